#include "cnitool/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnitool/container_id.h"
#include "cnitool/network_list.h"
#include "cnitool/result_cache.h"
#include "cnitool/runner.h"
#include "libcni/core/error.h"
#include "libcni/protocol/build_version.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"

namespace cni::tool {

namespace {

constexpr const char* kDefaultNetDir = "/etc/cni/net.d";

std::string env_or(const EnvMap& env, const char* key, const std::string& def) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? def : it->second;
}

// Go's filepath.SplitList: "" is no directory at all.
std::vector<std::string> split_path(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(':', pos);
    out.push_back(s.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return out;
}

nlohmann::json parse_cap_args(const EnvMap& env) {
  std::string text = env_or(env, "CAP_ARGS", "");
  if (text.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(kErrInvalidEnv, "CAP_ARGS must be a JSON object, got: " + text);
  }
  return j;
}

Attachment parse_valid(const std::string& spec, const std::string& default_ifname) {
  auto colon = spec.find(':');
  Attachment a{spec.substr(0, colon),
               colon == std::string::npos ? default_ifname : spec.substr(colon + 1)};
  validate_container_id(a.container_id, "--valid container ID");
  validate_ifname(a.ifname, "--valid interface name");
  return a;
}

int report(std::ostream& err, const std::string& what) {
  err << "cnitool: " << what << "\n";
  return 1;
}

}  // namespace

int cnitool_main(int argc, const char* const* argv, const EnvMap& env, const std::string& cwd,
                 std::ostream& out, std::ostream& err, ExecRunner& exec) {
  CLI::App app{
      "Runs a CNI network configuration against a network namespace the way a container "
      "runtime does (add, check, del, gc, status), or asks its plugins for their versions.\n"
      "Environment: NETCONFPATH (default /etc/cni/net.d), CNI_PATH, CNI_IFNAME (default eth0), "
      "CNI_ARGS, CAP_ARGS (JSON object of capability arguments), CNI_CACHE_DIR (default "
      "/var/lib/cni).\nIts README: cnitool/README.md (installed: "
      "/usr/share/doc/strait-cni/cnitool/README.md).",
      "cnitool"};
  app.set_version_flag("-V,--version", "cnitool " + std::string(build_version()));
  app.fallthrough();
  app.require_subcommand(1);
  std::string ifname_flag;
  app.add_option("-i,--ifname", ifname_flag,
                 "Interface name (defaults to env var CNI_IFNAME or 'eth0')");

  std::string net_name;
  std::string netns;
  std::vector<std::string> valid_specs;
  struct Verb {
    const char* name;
    const char* help;
  };
  const Verb verbs[] = {
      {"add", "Add the network's interface to a network namespace and print the result"},
      {"check", "Check the interface of a network namespace (spec >= 0.4.0)"},
      {"del", "Delete the interface from a network namespace"},
      {"gc", "Delete every cached attachment of the network not in --valid, then GC (>= 1.1.0)"},
      {"status", "Ask every plugin whether it is ready for ADD (spec >= 1.1.0)"},
  };
  for (const auto& v : verbs) {
    auto* sub = app.add_subcommand(v.name, v.help);
    sub->add_option("net", net_name, "Network name (the \"name\" of a config)")->required();
    sub->add_option("netns", netns, "Network namespace path")->required();
    if (std::string(v.name) == "gc") {
      sub->add_option("--valid", valid_specs,
                      "A still valid attachment CONTAINERID[:IFNAME] (repeatable); sends "
                      "cni.dev/valid-attachments. Without it no attachment is valid and the "
                      "key is not sent, as upstream cnitool does");
    }
  }
  auto* version_cmd =
      app.add_subcommand("version", "Print the VERSION answer of every plugin of the network");
  version_cmd->add_option("net", net_name, "Network name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : 1;
  }

  const std::string verb = app.get_subcommands().front()->get_name();
  try {
    std::string dir = env_or(env, "NETCONFPATH", kDefaultNetDir);
    NetworkList net = load_network_list(dir, net_name);
    ResultCache cache(env_or(env, "CNI_CACHE_DIR", kDefaultCacheDir));
    auto cni_path_it = env.find("CNI_PATH");
    NetworkRunner runner(split_path(cni_path_it == env.end() ? "" : cni_path_it->second), cache,
                         env, exec);

    if (verb == "version") {
      nlohmann::json plugins = nlohmann::json::array();
      std::vector<std::string> unsupported;
      for (const auto& pv : runner.version(net)) {
        nlohmann::json entry = pv.answer;
        entry["type"] = pv.type;
        plugins.push_back(entry);
        auto sv = pv.answer.value("supportedVersions", std::vector<std::string>());
        if (std::find(sv.begin(), sv.end(), net.conf.cni_version) == sv.end()) {
          unsupported.push_back(pv.type);
        }
      }
      out << nlohmann::json{{"name", net.conf.name},
                            {"cniVersion", net.conf.cni_version},
                            {"plugins", plugins}}
                 .dump(4)
          << "\n";
      for (const auto& type : unsupported) {
        report(err, "plugin " + type + " does not support config version \"" +
                        net.conf.cni_version + "\"");
      }
      return unsupported.empty() ? 0 : 1;
    }

    RuntimeConf rt;
    rt.ifname = !ifname_flag.empty() ? ifname_flag : env_or(env, "CNI_IFNAME", "eth0");
    rt.netns = absolute_path(netns, cwd);
    rt.container_id = container_id_for_netns(rt.netns);
    rt.capability_args = parse_cap_args(env);
    if (auto args = env_or(env, "CNI_ARGS", ""); !args.empty())
      rt.args = parse_cni_args(args).pairs;

    if (verb == "add") {
      Result r = runner.add(net, rt);
      out << result_to_json(r, net.conf.cni_version).dump(4) << "\n";
    } else if (verb == "check") {
      runner.check(net, rt);
    } else if (verb == "del") {
      runner.del(net, rt);
    } else if (verb == "gc") {
      // Upstream cnitool calls GCNetworkList(..., nil): no valid attachments at all.
      std::optional<std::vector<Attachment>> valid;
      if (!valid_specs.empty()) {
        valid.emplace();
        for (const auto& s : valid_specs) valid->push_back(parse_valid(s, rt.ifname));
      }
      runner.gc(net, valid);
    } else if (verb == "status") {
      runner.status(net);
    }
    return 0;
  } catch (const Error& e) {
    std::string msg = e.msg();
    if (!e.details().empty()) msg += "; " + e.details();
    return report(err, msg);
  } catch (const std::exception& e) {
    return report(err, e.what());
  }
}

}  // namespace cni::tool
