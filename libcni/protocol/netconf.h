#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/protocol/result.h"

namespace cni {

// A plugin config as a runtime hands it over on stdin. The whole object is kept in `raw`
// (unknown keys included) so plugins read their own keys with Fields{conf.raw, ""}.
struct NetConf {
  std::string cni_version;
  std::string name;
  std::string type;
  nlohmann::json raw;
  nlohmann::json ipam;            // null when absent
  nlohmann::json runtime_config;  // object, empty when absent
  nlohmann::json args;            // object, empty when absent
  Dns dns;
  std::optional<Result> prev_result;

  // `args.cni.ips` (CONVENTIONS.md), empty when absent.
  std::vector<std::string> args_cni_ips() const;
  // runtimeConfig.<key> or null.
  const nlohmann::json& runtime(std::string_view key) const;
};

// Decodes stdin: malformed JSON or a non-object is kErrDecode; a missing cniVersion means
// 0.1.0 and is kErrIncompatibleVersion like any version not in `supported`; wrong types of
// the well-known keys are kErrInvalidConfig naming the key. `name` must match
// ^[A-Za-z0-9][A-Za-z0-9_.-]*$ (it becomes a directory name) when require_name is set.
NetConf parse_netconf(std::string_view data, const std::vector<std::string>& supported,
                      bool require_name = true);
NetConf netconf_from_json(const nlohmann::json& j, const std::vector<std::string>& supported,
                          bool require_name = true);

// Network names and container IDs share the spec's pattern.
bool is_valid_name(std::string_view s);

// A network configuration list (.conflist).
struct NetConfList {
  std::string cni_version;
  std::vector<std::string> cni_versions;
  std::string name;
  bool disable_check = false;
  bool disable_gc = false;
  std::vector<nlohmann::json> plugins;
  nlohmann::json raw;
};

// Parses a conflist; a single-plugin .conf (an object with "type" and no "plugins") is
// wrapped into a one-plugin list as libcni does. The effective cniVersion is the highest of
// cniVersion and cniVersions that is in `supported`.
NetConfList parse_conflist(std::string_view data, const std::vector<std::string>& supported);

// GC input (SPEC §GC): "cni.dev/valid-attachments", or the legacy "cni.dev/attachments".
struct Attachment {
  std::string container_id;
  std::string ifname;
  bool operator==(const Attachment&) const = default;
};
// nullopt when neither key is present: "absent" is not "empty" (an empty list means
// nothing is valid).
std::optional<std::vector<Attachment>> valid_attachments(const NetConf& conf);

}  // namespace cni
