#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cni {

// The process environment, passed in explicitly (no getenv in library code).
using EnvMap = std::map<std::string, std::string>;
EnvMap env_from_environ(char** envp);

// CNI_ARGS: "K=V;K=V". Keys in order of appearance.
struct CniArgs {
  std::vector<std::pair<std::string, std::string>> pairs;
  bool ignore_unknown = false;  // IgnoreUnknown=1|true
  std::optional<std::string> get(std::string_view key) const;
};

// The keys every plugin accepts: IgnoreUnknown and the K8S_POD_* keys kubelet sends.
const std::set<std::string>& common_cni_args();

// Throws Error{kErrInvalidEnv} naming CNI_ARGS and the malformed pair.
CniArgs parse_cni_args(std::string_view s);
// Throws Error{kErrInvalidEnv} naming the first key that is neither common nor in `known`,
// unless IgnoreUnknown is set.
void check_known_args(const CniArgs& args, const std::set<std::string>& known);

// The validated CNI_* variables of one invocation.
struct Env {
  std::string command;  // ADD, DEL, CHECK, STATUS, GC, VERSION or "" (about)
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::vector<std::string> path;  // CNI_PATH split on ':'
  CniArgs args;
};

// Reads and validates the variables `command` needs (SPEC "Parameters"): CNI_CONTAINERID,
// CNI_IFNAME for ADD/DEL/CHECK; CNI_NETNS for ADD/CHECK; CNI_PATH for all but VERSION.
// Missing or invalid variables throw Error{kErrInvalidEnv} naming the variable.
Env parse_env(const EnvMap& env);

// ifname: 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
void validate_ifname(std::string_view ifname, std::string_view what = "CNI_IFNAME");
// ^[A-Za-z0-9][A-Za-z0-9_.-]*$
void validate_container_id(std::string_view id, std::string_view what = "CNI_CONTAINERID");

}  // namespace cni
