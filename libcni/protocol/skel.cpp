#include "libcni/protocol/skel.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/protocol/build_version.h"
#include "libcni/protocol/fields.h"
#include "libcni/protocol/version.h"

namespace cni {

namespace {

void print_error(std::ostream& out, const std::string& version, int code, const std::string& msg,
                 const std::string& details) {
  nlohmann::json j = {{"cniVersion", version}, {"code", code}, {"msg", msg}};
  if (!details.empty()) j["details"] = details;
  out << j.dump(4, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

// VERSION must answer whatever a runtime sends, including dummy env and a bare
// {"cniVersion":"x"} (podman sends that to every plugin of every config).
void print_version(std::ostream& out, const std::vector<std::string>& versions) {
  nlohmann::json j = {{"cniVersion", versions.back()}, {"supportedVersions", versions}};
  out << j.dump() << '\n';
}

void require_version_for(const std::string& command, const std::string& version,
                         std::string_view min) {
  if (!version_at_least(version, min)) {
    throw Error(kErrIncompatibleVersion, "config version \"" + version + "\" does not allow " +
                                             command + " (needs " + std::string(min) + ")");
  }
}

// Every line of one invocation names what it is about: the plugin, the command, the network,
// the container and the interface (the last three when the command has them).
std::string event_tag(const std::string& plugin, const Env& env, const std::string& network) {
  std::string tag = plugin + " " + env.command;
  if (!network.empty()) tag += " network=" + network;
  if (!env.container_id.empty()) tag += " container=" + env.container_id;
  if (!env.ifname.empty()) tag += " ifname=" + env.ifname;
  return tag;
}

// The one info line of a successful ADD: what the pod got.
std::string add_summary(const Result& r) {
  std::string s = "ADD ok";
  for (size_t i = 0; i < r.ips.size(); ++i) {
    s += (i == 0 ? ": " : ", ") + r.ips[i].address.str();
  }
  return s;
}

template <class Fn>
const Fn& verb(const Fn& fn, const Plugin& plugin, const std::string& command) {
  if (!fn) throw Error(kErrInternal, plugin.name + " does not implement " + command);
  return fn;
}

}  // namespace

int skel_run(const Plugin& plugin, const Io& io) {
  const std::vector<std::string>& versions =
      plugin.versions.empty() ? supported_versions() : plugin.versions;
  std::string error_version = versions.back();
  Logger log(io.err);
  // Until the environment and the config are read, lines name the plugin and the command.
  const auto raw_command = io.env.find("CNI_COMMAND");
  log.set_tag(plugin.name + (raw_command == io.env.end() ? "" : " " + raw_command->second));
  try {
    Env env = parse_env(io.env);
    const std::string& cmd = env.command;
    if (cmd.empty()) {
      io.err << help_text(plugin, false);
      return 0;
    }
    if (cmd == "VERSION") {
      print_version(io.out, versions);
      return 0;
    }

    NetConf conf = parse_netconf(io.stdin_data, versions);
    error_version = conf.cni_version;
    Fields f(conf.raw, "");
    log.set_tag(event_tag(plugin.name, env, conf.name));
    if (auto file = f.str("logFile"); file && !file->empty()) log.open_file(*file);
    if (auto level = f.str("logLevel"); level && !log.set_level(*level)) {
      f.fail("logLevel", quote_value(*level) + " is not one of error, warning, info, debug");
    }
    // The whole config only at debug: it may name certificate paths, addresses, devices.
    log.debug("config: " + std::string(io.stdin_data));

    bool attach = cmd == "ADD" || cmd == "DEL" || cmd == "CHECK";
    if (attach) check_known_args(env.args, plugin.cni_args);
    if (cmd == "CHECK") require_version_for(cmd, conf.cni_version, "0.4.0");
    if (cmd == "STATUS" || cmd == "GC") require_version_for(cmd, conf.cni_version, "1.1.0");

    CmdArgs args{env, conf, std::string(io.stdin_data), io.env, log, io.exec};
    if (cmd == "ADD") {
      Result r = verb(plugin.add, plugin, cmd)(args);
      r.cni_version = conf.cni_version;
      io.out << result_to_json(r, conf.cni_version).dump(4) << '\n';
      log.info(add_summary(r));
    } else if (cmd == "DEL") {
      verb(plugin.del, plugin, cmd)(args);
    } else if (cmd == "CHECK") {
      verb(plugin.check, plugin, cmd)(args);
    } else if (cmd == "PARSE") {
      verb(plugin.parse, plugin, cmd)(args);
    } else if (cmd == "STATUS") {
      verb(plugin.status, plugin, cmd)(args);
    } else {
      verb(plugin.gc, plugin, cmd)(args, valid_attachments(conf));
    }
    if (cmd != "ADD") log.info(cmd + " ok");
    return 0;
  } catch (const Error& e) {
    log.error("failed (code " + std::to_string(e.code()) + "): " + e.msg());
    print_error(io.out, error_version, e.code(), e.msg(), e.details());
  } catch (const std::exception& e) {
    log.error("failed (code " + std::to_string(kErrInternal) + "): " + e.what());
    print_error(io.out, error_version, kErrInternal, e.what(), "");
  }
  return 1;
}

std::string read_stdin(int fd) {
  std::string input;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw Error(kErrIo, std::string("failed to read stdin: ") + std::strerror(errno));
    }
    if (n == 0) return input;
    if (input.size() + static_cast<size_t>(n) > kMaxStdin) {
      throw Error(kErrDecode, "failed to decode config: stdin is larger than " +
                                  std::to_string(kMaxStdin >> 20) + " MiB");
    }
    input.append(buf, static_cast<size_t>(n));
  }
}

std::string help_text(const Plugin& plugin, bool has_subcommands) {
  const std::string& n = plugin.name;
  std::string text = plugin.about + "\n" + n + " " + std::string(build_version()) + "\n\n";
  text +=
      "A CNI plugin: a container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC,\n"
      "VERSION) and the other CNI_* variables in the environment and the network config on\n"
      "stdin, and reads the result (or the error) on stdout. Its log goes to stderr, or to the\n"
      "config's logFile, at its logLevel (error, warning, info, debug).\n"
      "`CNI_COMMAND=PARSE CNI_PATH=/opt/cni/bin " +
      n +
      " < CONFIG` checks a config, touching nothing.\n\n"
      "Its keys, defaults and examples: plugins/" +
      n + "/README.md\n  (installed: /usr/share/doc/strait-cni/plugins/" + n +
      "/README.md)\n"
      "Troubleshooting and error codes: docs/troubleshooting.md\n\n"
      "Options: --version (-V), --help (-h)\n";
  if (has_subcommands) text += "Subcommands: see `" + n + " --help`\n";
  return text;
}

std::optional<int> run_by_hand(const Plugin& plugin, const std::vector<std::string>& args,
                               const EnvMap& env, const Cli& cli, std::ostream& out,
                               std::ostream& err) {
  if (args.empty()) {
    auto command = env.find("CNI_COMMAND");
    if (command != env.end() && !command->second.empty()) return std::nullopt;
    err << help_text(plugin, static_cast<bool>(cli));
    return 0;
  }
  const std::string& first = args.front();
  if (first == "--version" || first == "-V") {
    out << plugin.name << ' ' << build_version() << '\n';
    return 0;
  }
  if (first == "--help" || first == "-h") {
    out << help_text(plugin, false);
    if (cli) {
      out << '\n';
      return cli({"--help"}, env, out, err);
    }
    return 0;
  }
  if (cli) return cli(args, env, out, err);
  err << plugin.name << ": unknown argument " << quote_value(first)
      << " (a CNI plugin takes none: run it with CNI_COMMAND set, or with --help)\n";
  return 2;
}

int skel_main(const Plugin& plugin, int argc, char** argv, char** envp, const Cli& cli) {
  EnvMap env = env_from_environ(envp);
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  if (auto rc = run_by_hand(plugin, args, env, cli, std::cout, std::cerr)) return *rc;
  return skel_main(plugin, envp);
}

int skel_main(const Plugin& plugin, char** envp) {
  EnvMap env = env_from_environ(envp);
  std::string input;
  SpawnOptions delegates;
  try {
    input = read_stdin(STDIN_FILENO);
    delegates.timeout = delegate_timeout(env);
  } catch (const Error& e) {
    // VERSION answers whatever comes with it (it may come with no stdin at all, and a runtime
    // sends it with dummy values).
    auto command = env.find("CNI_COMMAND");
    if (command == env.end() || command->second != "VERSION") {
      print_error(std::cout, supported_versions().back(), e.code(), e.msg(), e.details());
      return 1;
    }
  }
  SpawnRunner runner(delegates);
  return skel_run(plugin, Io{env, input, std::cout, std::cerr, runner});
}

}  // namespace cni
