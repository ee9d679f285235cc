#include "cnitool/runner.h"

#include <set>

#include "libcni/core/error.h"
#include "libcni/protocol/version.h"

namespace cni::tool {

namespace {

// The spec version libcni sends with VERSION (version.Current()).
constexpr const char* kCurrentVersion = "1.1.0";

std::string join_path(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& dir : path) out += (out.empty() ? "" : ":") + dir;
  return out;
}

// Runs `f`, prefixing the message of a cni::Error it throws with `prefix` (code and details
// kept, so a plugin's error code reaches the caller unchanged).
template <typename F>
auto annotate(const std::string& prefix, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.code(), prefix + e.msg(), e.details());
  }
}

std::string error_text(const Error& e) {
  return e.details().empty() ? e.msg() : e.msg() + "; " + e.details();
}

}  // namespace

std::string plugin_description(const nlohmann::json& plugin) {
  std::string out = "plugin type=\"" + plugin.value("type", std::string()) + "\"";
  if (auto it = plugin.find("name"); it != plugin.end() && it->is_string() && !it->empty()) {
    out += " name=\"" + it->get<std::string>() + "\"";
  }
  return out;
}

std::string join_cni_args(const std::vector<std::pair<std::string, std::string>>& args) {
  std::string out;
  for (const auto& [k, v] : args) out += (out.empty() ? "" : ";") + k + "=" + v;
  return out;
}

nlohmann::json build_plugin_config(const NetConfList& list, const nlohmann::json& plugin,
                                   const nlohmann::json& prev_result,
                                   const nlohmann::json& capability_args) {
  nlohmann::json conf = plugin;
  conf["name"] = list.name;
  conf["cniVersion"] = list.cni_version;
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;

  nlohmann::json caps = nlohmann::json::object();
  if (auto it = conf.find("capabilities"); it != conf.end()) {
    if (!it->is_null() && !it->is_object()) {
      throw Error(kErrInvalidConfig, "invalid config: \"capabilities\" of " +
                                         plugin_description(plugin) + " must be an object, got " +
                                         it->dump());
    }
    if (it->is_object()) caps = *it;
    conf.erase(it);
  }
  if (capability_args.is_object()) {
    nlohmann::json rc = nlohmann::json::object();
    for (const auto& [cap, enabled] : caps.items()) {
      if (!enabled.is_boolean()) {
        throw Error(kErrInvalidConfig, "invalid config: \"capabilities." + cap + "\" of " +
                                           plugin_description(plugin) + " must be a boolean");
      }
      if (!enabled.get<bool>()) continue;
      if (auto arg = capability_args.find(cap); arg != capability_args.end()) rc[cap] = *arg;
    }
    if (!rc.empty()) conf["runtimeConfig"] = rc;
  }
  return conf;
}

EnvMap NetworkRunner::env_for(const RuntimeConf& rt) const {
  // libcni's invoke.Args.AsEnv: the runtime's environment plus every CNI_* variable, empty
  // ones included.
  EnvMap env = environ_;
  env["CNI_CONTAINERID"] = rt.container_id;
  env["CNI_NETNS"] = rt.netns;
  env["CNI_ARGS"] = join_cni_args(rt.args);
  env["CNI_IFNAME"] = rt.ifname;
  env["CNI_PATH"] = join_path(path_);
  return env;
}

std::string NetworkRunner::exec_plugin(const nlohmann::json& plugin, const std::string& command,
                                       const EnvMap& env, const nlohmann::json& stdin_conf) {
  return invoke_plugin(exec_, plugin.value("type", std::string()), path_, command, env,
                       stdin_conf.dump());
}

std::optional<nlohmann::json> NetworkRunner::cached_result(const NetworkList& net,
                                                           const RuntimeConf& rt) {
  auto raw = cache_.load_result(net.conf.name, rt.container_id, rt.ifname);
  if (!raw) return std::nullopt;
  // Plugins get prevResult in the config's version, whatever version it was cached in.
  try {
    return result_to_json(parse_result(*raw, "cached result"), net.conf.cni_version);
  } catch (const Error& e) {
    throw Error(e.code(), "failed to convert cached result to config version \"" +
                              net.conf.cni_version + "\": " + e.msg());
  }
}

Result NetworkRunner::add(const NetworkList& net, const RuntimeConf& rt) {
  validate_container_id(rt.container_id, "container ID");
  if (!is_valid_name(net.conf.name)) {
    throw Error(kErrInvalidConfig, "invalid network name \"" + net.conf.name + "\"");
  }
  validate_ifname(rt.ifname, "interface name");
  EnvMap env = env_for(rt);
  nlohmann::json prev;  // null: the first plugin gets no prevResult
  for (const auto& plugin : net.conf.plugins) {
    prev = annotate(plugin_description(plugin) + " failed (add): ", [&] {
      auto conf = build_plugin_config(net.conf, plugin, prev, rt.capability_args);
      std::string out = exec_plugin(plugin, "ADD", env, conf);
      auto j = nlohmann::json::parse(out, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        throw Error(kErrDecode, "result is not a JSON object: " + out.substr(0, 200));
      }
      return result_to_json(parse_result(j, "result"), net.conf.cni_version);
    });
  }
  CachedAttachment entry;
  entry.container_id = rt.container_id;
  entry.network = net.conf.name;
  entry.ifname = rt.ifname;
  entry.config = net.bytes;
  entry.netns = rt.netns;
  entry.cni_args = rt.args;
  entry.capability_args = rt.capability_args;
  entry.result = prev;
  annotate("failed to set network \"" + net.conf.name + "\" cached result: ",
           [&] { cache_.store(entry); });
  return parse_result(prev, "result");
}

void NetworkRunner::check(const NetworkList& net, const RuntimeConf& rt) {
  if (!version_at_least(net.conf.cni_version, "0.4.0")) {
    throw Error(kErrIncompatibleVersion, "configuration version \"" + net.conf.cni_version +
                                             "\" does not support the CHECK command");
  }
  if (net.conf.disable_check) return;
  auto cached = annotate("failed to get network \"" + net.conf.name + "\" cached result: ",
                         [&] { return cached_result(net, rt); });
  nlohmann::json prev = cached ? *cached : nlohmann::json();
  EnvMap env = env_for(rt);
  for (const auto& plugin : net.conf.plugins) {
    annotate(plugin_description(plugin) + " failed (check): ", [&] {
      exec_plugin(plugin, "CHECK", env,
                  build_plugin_config(net.conf, plugin, prev, rt.capability_args));
    });
  }
}

void NetworkRunner::del(const NetworkList& net, const RuntimeConf& rt) {
  nlohmann::json prev;
  // The cached result goes to DEL from 0.4.0 on; an unreadable entry is dropped, as libcni
  // does, so that a corrupt cache cannot block the teardown.
  if (version_at_least(net.conf.cni_version, "0.4.0")) {
    try {
      if (auto cached = cached_result(net, rt)) prev = *cached;
    } catch (const Error&) {
      cache_.remove(net.conf.name, rt.container_id, rt.ifname);
    }
  }
  EnvMap env = env_for(rt);
  for (auto it = net.conf.plugins.rbegin(); it != net.conf.plugins.rend(); ++it) {
    annotate(plugin_description(*it) + " failed (delete): ", [&] {
      exec_plugin(*it, "DEL", env, build_plugin_config(net.conf, *it, prev, rt.capability_args));
    });
  }
  // libcni removes the entry only when it found a cached result (so never below 0.4.0); we
  // remove it whenever DEL succeeded, which is what the entry's lifetime means.
  if (!rt.container_id.empty() && !rt.ifname.empty()) {
    cache_.remove(net.conf.name, rt.container_id, rt.ifname);
  }
}

void NetworkRunner::gc(const NetworkList& net,
                       const std::optional<std::vector<Attachment>>& valid) {
  if (net.conf.disable_gc) return;
  std::set<std::pair<std::string, std::string>> keep;
  if (valid) {
    for (const auto& a : *valid) keep.emplace(a.container_id, a.ifname);
  }
  std::vector<Error> errors;
  for (const auto& a : cache_.list()) {
    if (a.network != net.conf.name || keep.count({a.container_id, a.ifname})) continue;
    RuntimeConf rt{a.container_id, a.netns, a.ifname, a.cni_args, a.capability_args};
    try {
      del(net, rt);
    } catch (const Error& e) {
      errors.emplace_back(e.code(), "failed to delete stale attachment " + a.container_id + " " +
                                        a.ifname + ": " + error_text(e));
    }
  }
  if (version_at_least(net.conf.cni_version, "1.1.0")) {
    nlohmann::json attachments = nlohmann::json::array();
    if (valid) {
      for (const auto& a : *valid) {
        attachments.push_back({{"containerID", a.container_id}, {"ifname", a.ifname}});
      }
    }
    EnvMap env = env_for(RuntimeConf{});
    for (const auto& plugin : net.conf.plugins) {
      try {
        auto conf = build_plugin_config(net.conf, plugin, nullptr, nullptr);
        if (valid) {
          // SPEC §GC names the key "cni.dev/valid-attachments"; the first wording said
          // "cni.dev/attachments" and some plugins still read that one (cni #1101).
          conf["cni.dev/valid-attachments"] = attachments;
          conf["cni.dev/attachments"] = attachments;
        }
        exec_plugin(plugin, "GC", env, conf);
      } catch (const Error& e) {
        errors.emplace_back(e.code(),
                            "failed to GC " + plugin_description(plugin) + ": " + error_text(e));
      }
    }
  }
  if (errors.empty()) return;
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e.msg();
  throw Error(errors.front().code(), msg);
}

void NetworkRunner::status(const NetworkList& net) {
  if (!version_at_least(net.conf.cni_version, "1.1.0")) return;
  EnvMap env = env_for(RuntimeConf{});
  for (const auto& plugin : net.conf.plugins) {
    annotate(plugin_description(plugin) + " failed (status): ", [&] {
      exec_plugin(plugin, "STATUS", env, build_plugin_config(net.conf, plugin, nullptr, nullptr));
    });
  }
}

std::vector<PluginVersion> NetworkRunner::version(const NetworkList& net) {
  // libcni's GetVersionInfo: fake values for plugins built against an old skel.
  EnvMap env = environ_;
  env["CNI_CONTAINERID"] = "";
  env["CNI_NETNS"] = "dummy";
  env["CNI_IFNAME"] = "dummy";
  env["CNI_PATH"] = "dummy";
  env["CNI_ARGS"] = "";
  nlohmann::json input = {{"cniVersion", kCurrentVersion}};
  std::vector<PluginVersion> out;
  for (const auto& plugin : net.conf.plugins) {
    out.push_back(annotate(plugin_description(plugin) + " failed (version): ", [&] {
      std::string text = exec_plugin(plugin, "VERSION", env, input);
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        throw Error(kErrDecode, "VERSION answer is not a JSON object: " + text.substr(0, 200));
      }
      return PluginVersion{plugin.value("type", std::string()), j};
    }));
  }
  return out;
}

}  // namespace cni::tool
