#include "libcni/protocol/env.h"

#include <algorithm>
#include <cctype>

#include "libcni/core/error.h"
#include "libcni/protocol/netconf.h"

namespace cni {

namespace {

[[noreturn]] void env_error(std::string_view var, const std::string& why) {
  throw Error(kErrInvalidEnv, std::string(var) + " " + why);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

EnvMap env_from_environ(char** envp) {
  EnvMap env;
  for (char** e = envp; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::optional<std::string> CniArgs::get(std::string_view key) const {
  for (const auto& [k, v] : pairs) {
    if (k == key) return v;
  }
  return std::nullopt;
}

const std::set<std::string>& common_cni_args() {
  static const std::set<std::string> kCommon = {"IgnoreUnknown", "K8S_POD_NAMESPACE",
                                                "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID",
                                                "K8S_POD_UID"};
  return kCommon;
}

CniArgs parse_cni_args(std::string_view s) {
  CniArgs args;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(';', pos);
    if (end == std::string_view::npos) end = s.size();
    std::string_view pair = s.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;  // tolerate "a=b;" as runtimes sometimes build it
    auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      env_error("CNI_ARGS", "has an invalid pair " + quote(pair) + " (expected KEY=VALUE)");
    }
    args.pairs.emplace_back(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
  }
  if (auto ign = args.get("IgnoreUnknown")) {
    std::string v = lower(*ign);
    if (v == "1" || v == "true") {
      args.ignore_unknown = true;
    } else if (v != "0" && v != "false" && !v.empty()) {
      env_error("CNI_ARGS", "has an invalid IgnoreUnknown value " + quote(*ign));
    }
  }
  return args;
}

void check_known_args(const CniArgs& args, const std::set<std::string>& known) {
  if (args.ignore_unknown) return;
  for (const auto& [k, v] : args.pairs) {
    if (!common_cni_args().count(k) && !known.count(k)) {
      env_error("CNI_ARGS",
                "has an unknown key " + quote(k) + " (set IgnoreUnknown=1 to ignore unknown keys)");
    }
  }
}

void validate_ifname(std::string_view ifname, std::string_view what) {
  if (ifname.empty()) env_error(what, "is empty");
  // Kernel dev_valid_name(): shorter than IFNAMSIZ (16), not "." or "..", no '/', ':' or
  // whitespace.
  if (ifname.size() > 15) {
    env_error(what, quote(ifname) + " is longer than 15 bytes");
  }
  if (ifname == "." || ifname == "..") env_error(what, quote(ifname) + " is not a valid name");
  for (char c : ifname) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || c == '\0') {
      env_error(what, quote(ifname) + " contains an invalid character");
    }
  }
}

void validate_container_id(std::string_view id, std::string_view what) {
  if (id.empty()) env_error(what, "is empty");
  if (!is_valid_name(id)) {
    env_error(what, quote(id) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
}

Env parse_env(const EnvMap& env) {
  auto var = [&](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  auto required = [&](const char* name) {
    auto v = var(name);
    if (!v || v->empty()) env_error(name, "is required but missing");
    return *v;
  };

  Env e;
  e.command = var("CNI_COMMAND").value_or("");
  const std::string& cmd = e.command;
  if (cmd.empty() || cmd == "VERSION") return e;
  bool attach = cmd == "ADD" || cmd == "DEL" || cmd == "CHECK";
  if (!attach && cmd != "STATUS" && cmd != "GC" && cmd != "PARSE") {
    env_error("CNI_COMMAND", "has an unknown value " + quote(cmd));
  }
  std::string path = required("CNI_PATH");
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    if (end > pos) e.path.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  if (!attach) return e;

  e.container_id = required("CNI_CONTAINERID");
  validate_container_id(e.container_id);
  e.ifname = required("CNI_IFNAME");
  validate_ifname(e.ifname);
  // SPEC: CNI_NETNS is optional for DEL (the netns may already be gone).
  e.netns = cmd == "DEL" ? var("CNI_NETNS").value_or("") : required("CNI_NETNS");
  e.args = parse_cni_args(var("CNI_ARGS").value_or(""));
  return e;
}

}  // namespace cni
