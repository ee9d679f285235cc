#include "libcni/protocol/skel.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <system_error>

#include "libcni/core/error.h"
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
  try {
    Env env = parse_env(io.env);
    const std::string& cmd = env.command;
    if (cmd.empty()) {
      io.err << plugin.about << '\n';
      return 0;
    }
    if (cmd == "VERSION") {
      print_version(io.out, versions);
      return 0;
    }

    NetConf conf = parse_netconf(io.stdin_data, versions);
    error_version = conf.cni_version;
    Fields f(conf.raw, "");
    log.set_tag(plugin.name + "[" + cmd + (env.container_id.empty() ? "" : " ") +
                env.container_id.substr(0, 12) + "]");
    if (auto file = f.str("logFile"); file && !file->empty()) log.open_file(*file);
    if (auto level = f.str("logLevel")) log.set_level(*level);

    bool attach = cmd == "ADD" || cmd == "DEL" || cmd == "CHECK";
    if (attach) check_known_args(env.args, plugin.cni_args);
    if (cmd == "CHECK") require_version_for(cmd, conf.cni_version, "0.4.0");
    if (cmd == "STATUS" || cmd == "GC") require_version_for(cmd, conf.cni_version, "1.1.0");

    CmdArgs args{env, conf, std::string(io.stdin_data), io.env, log, io.exec};
    if (cmd == "ADD") {
      Result r = verb(plugin.add, plugin, cmd)(args);
      r.cni_version = conf.cni_version;
      io.out << result_to_json(r, conf.cni_version).dump(4) << '\n';
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
    log.debug(cmd + " succeeded");
    return 0;
  } catch (const Error& e) {
    log.error(e.msg());
    print_error(io.out, error_version, e.code(), e.msg(), e.details());
  } catch (const std::exception& e) {
    log.error(e.what());
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
