#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnitool/network_list.h"
#include "cnitool/result_cache.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"

namespace cni::tool {

// The per-attachment arguments of one runtime operation (libcni RuntimeConf).
struct RuntimeConf {
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS, in order
  nlohmann::json capability_args = nlohmann::json::object();
};

// The stdin of one plugin of `list` (libcni buildOneConfig): the plugin object with the list's
// "name" and effective "cniVersion", "capabilities" removed (SPEC "Deriving execution
// configuration"), "prevResult" when `prev_result` is not null, and, when `capability_args` is
// an object, "runtimeConfig" = the capabilities the plugin declares true that
// `capability_args` supplies (left as configured when none match, as libcni does).
// A non-object "capabilities" throws Error{kErrInvalidConfig}.
nlohmann::json build_plugin_config(const NetConfList& list, const nlohmann::json& plugin,
                                   const nlohmann::json& prev_result,
                                   const nlohmann::json& capability_args);

// "plugin type=\"macvlan\"" (+ name="x" when the plugin object has one): how errors name a
// plugin of a list.
std::string plugin_description(const nlohmann::json& plugin);

// CNI_ARGS as libcni joins it: "K=V;K=V".
std::string join_cni_args(const std::vector<std::pair<std::string, std::string>>& args);

// One plugin's answer to VERSION.
struct PluginVersion {
  std::string type;
  nlohmann::json answer;  // {"cniVersion", "supportedVersions"}
};

// Runs a network list as libcni's CNIConfig does (AddNetworkList, CheckNetworkList,
// DelNetworkList, GCNetworkList, GetStatusNetworkList), with plugins found on `cni_path`,
// the environment `environ` (CNI_* variables set per call) and results cached in `cache`.
class NetworkRunner {
 public:
  NetworkRunner(std::vector<std::string> cni_path, const ResultCache& cache, EnvMap base_env,
                ExecRunner& exec)
      : path_(std::move(cni_path)), cache_(cache), environ_(std::move(base_env)), exec_(exec) {}

  // ADD through the chain in order, each plugin getting the previous one's result; caches
  // and returns the final result in the list's cniVersion. A failed ADD is not undone (the
  // runtime, here the user, must DEL), as in libcni.
  Result add(const NetworkList& net, const RuntimeConf& rt);
  // CHECK in order with the cached result; an error for lists older than 0.4.0, nothing for
  // disableCheck.
  void check(const NetworkList& net, const RuntimeConf& rt);
  // DEL in reverse order with the cached result (>= 0.4.0), then removes the cache entry.
  void del(const NetworkList& net, const RuntimeConf& rt);
  // DEL for every cached attachment of this network not in `valid` (nullopt: none is
  // valid), then, for lists >= 1.1.0, GC on every plugin with both valid-attachment keys when
  // `valid` is given. disableGC skips all of it. Errors are collected and thrown together.
  void gc(const NetworkList& net, const std::optional<std::vector<Attachment>>& valid);
  // STATUS on every plugin (lists >= 1.1.0; older lists succeed without a call); stops at the
  // first error.
  void status(const NetworkList& net);
  // VERSION of every plugin, with the dummy environment libcni sends.
  std::vector<PluginVersion> version(const NetworkList& net);

 private:
  EnvMap env_for(const RuntimeConf& rt) const;
  std::string exec_plugin(const nlohmann::json& plugin, const std::string& command,
                          const EnvMap& env, const nlohmann::json& stdin_conf);
  // The cached result converted to the list's version; nullopt when there is none.
  std::optional<nlohmann::json> cached_result(const NetworkList& net, const RuntimeConf& rt);

  std::vector<std::string> path_;
  const ResultCache& cache_;
  EnvMap environ_;
  ExecRunner& exec_;
};

}  // namespace cni::tool
