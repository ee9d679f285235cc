#include "libcni/protocol/netconf.h"

#include <algorithm>

#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"
#include "libcni/protocol/version.h"

namespace cni {

namespace {

// nlohmann's parser is iterative, but printing and walking a value recurse: refuse absurd
// nesting before parsing (a config is a few levels deep).
constexpr int kMaxDepth = 64;

void check_depth(std::string_view data) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : data) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) {
        throw Error(kErrDecode, "failed to decode config: nested deeper than " +
                                    std::to_string(kMaxDepth) + " levels");
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

nlohmann::json decode(std::string_view data, std::string_view what) {
  check_depth(data);
  try {
    return nlohmann::json::parse(data);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number no double holds ("1e999").
    throw Error(kErrDecode, "failed to decode " + std::string(what) + ": " + e.what());
  }
}

std::string read_version(const Fields& f) {
  // SPEC: a config without cniVersion is 0.1.0, which no Strait executable speaks.
  return f.str_or("cniVersion", "0.1.0");
}

}  // namespace

bool is_valid_name(std::string_view s) {
  if (s.empty()) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(s.front())) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::vector<std::string> NetConf::args_cni_ips() const {
  std::vector<std::string> out;
  auto cni = args.find("cni");
  if (cni == args.end() || !cni->is_object()) return out;
  Fields f(*cni, "args.cni");
  if (auto ips = f.str_list("ips")) out = *ips;
  return out;
}

const nlohmann::json& NetConf::runtime(std::string_view key) const {
  static const nlohmann::json kNull;
  auto it = runtime_config.find(key);
  return it == runtime_config.end() ? kNull : *it;
}

NetConf parse_netconf(std::string_view data, const std::vector<std::string>& supported,
                      bool require_name) {
  return netconf_from_json(decode(data, "config"), supported, require_name);
}

NetConf netconf_from_json(const nlohmann::json& j, const std::vector<std::string>& supported,
                          bool require_name) {
  if (!j.is_object()) {
    throw Error(kErrDecode, "failed to decode config: expected a JSON object, got " +
                                std::string(j.type_name()));
  }
  Fields f(j, "");
  NetConf c;
  c.cni_version = read_version(f);
  require_supported_version(c.cni_version, supported);
  c.name = f.str_or("name", "");
  if (require_name && !is_valid_name(c.name)) {
    f.fail("name", quote_value(c.name) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
  c.type = f.str_or("type", "");
  if (f.object("ipam")) c.ipam = j["ipam"];
  c.runtime_config = f.object("runtimeConfig") ? j["runtimeConfig"] : nlohmann::json::object();
  c.args = f.object("args") ? j["args"] : nlohmann::json::object();
  if (f.object("dns")) {
    try {
      c.dns = parse_dns(j["dns"], "dns");
    } catch (const Error& e) {
      throw Error(kErrInvalidConfig, "invalid config: " + e.msg());
    }
  }
  if (j.contains("prevResult") && !j["prevResult"].is_null()) {
    nlohmann::json prev = j["prevResult"];
    if (!prev.is_object()) f.fail("prevResult", "must be an object, got " + quote_value(prev));
    // The runtime hands prevResult over in the config's version; accept it without the key.
    if (!prev.contains("cniVersion")) prev["cniVersion"] = c.cni_version;
    c.prev_result = parse_result(prev, "prevResult");
  }
  c.raw = j;
  return c;
}

NetConfList parse_conflist(std::string_view data, const std::vector<std::string>& supported) {
  nlohmann::json j = decode(data, "network configuration list");
  if (!j.is_object()) {
    throw Error(kErrDecode, "failed to decode network configuration list: expected an object");
  }
  Fields f(j, "");
  NetConfList l;
  l.raw = j;
  l.name = f.str_or("name", "");
  if (!is_valid_name(l.name)) {
    f.fail("name", quote_value(l.name) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
  if (!f.has("plugins")) {
    // A single-plugin .conf: wrapped as libcni's ConfListFromConf does.
    f.required_str("type");
    l.plugins.push_back(j);
  } else {
    const auto* plugins = f.array("plugins");
    if (plugins->empty()) f.fail("plugins", "must not be empty");
    for (size_t i = 0; i < plugins->size(); ++i) {
      Fields p((*plugins)[i], "plugins[" + std::to_string(i) + "]");
      p.required_str("type");
      l.plugins.push_back((*plugins)[i]);
    }
  }
  l.disable_check = f.boolean_or("disableCheck", false);
  l.disable_gc = f.boolean_or("disableGC", false);
  std::vector<std::string> candidates;
  if (auto v = f.str("cniVersion")) candidates.push_back(*v);
  if (auto vs = f.str_list("cniVersions")) {
    l.cni_versions = *vs;
    candidates.insert(candidates.end(), vs->begin(), vs->end());
  }
  if (candidates.empty()) candidates.push_back("0.1.0");
  // SPEC: the runtime uses the highest version it supports among cniVersion and cniVersions.
  std::optional<SemVer> best;
  for (const auto& v : candidates) {
    if (std::find(supported.begin(), supported.end(), v) == supported.end()) continue;
    SemVer s = parse_version(v);
    if (!best || s > *best) {
      best = s;
      l.cni_version = v;
    }
  }
  if (!best) require_supported_version(candidates.front(), supported);
  return l;
}

std::optional<std::vector<Attachment>> valid_attachments(const NetConf& conf) {
  Fields f(conf.raw, "");
  // libcni sends both; the legacy name came from the first wording of the GC verb (cni #1101).
  const char* key = "cni.dev/valid-attachments";
  if (!f.has(key)) key = "cni.dev/attachments";
  const nlohmann::json* list = f.array(key);
  if (!list) return std::nullopt;
  std::vector<Attachment> out;
  for (size_t i = 0; i < list->size(); ++i) {
    Fields a((*list)[i], std::string(key) + "[" + std::to_string(i) + "]");
    out.push_back({a.required_str("containerID"), a.required_str("ifname")});
  }
  return out;
}

}  // namespace cni
