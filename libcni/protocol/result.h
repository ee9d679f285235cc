#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/ip.h"

namespace cni {

// One internal result type covering spec 1.1.0; printed in any supported version and
// parsed from any of them (a prevResult may be older than the config).
struct Interface {
  std::string name;
  std::string mac;
  std::optional<int> mtu;   // 1.1.0
  std::string sandbox;      // netns path; empty on the host side
  std::string socket_path;  // 1.1.0
  std::string pci_id;       // 1.1.0
  bool operator==(const Interface&) const = default;
};

struct IpConfig {
  IpNet address;  // interface address with prefix, host bits kept
  std::optional<IpAddress> gateway;
  std::optional<int> interface;  // index into Result::interfaces
  bool operator==(const IpConfig&) const = default;
};

struct Route {
  IpNet dst;
  std::optional<IpAddress> gw;
  std::optional<int> mtu;       // 1.1.0
  std::optional<int> advmss;    // 1.1.0
  std::optional<int> priority;  // 1.1.0
  std::optional<int> table;     // 1.1.0
  std::optional<int> scope;     // 1.1.0: 0 universe, 253 link, 254 host
  bool operator==(const Route&) const = default;
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
  bool operator==(const Dns&) const = default;
};

struct Result {
  std::string cni_version;  // the version it was parsed from or will be printed in
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;
  bool operator==(const Result&) const = default;
};

// Parses a result of any supported version (0.3.0 ... 1.1.0). `where` names the field in
// errors ("prevResult"). Throws Error{kErrIncompatibleVersion} for an unsupported or
// missing cniVersion and Error{kErrDecode} naming the field for a malformed one.
Result parse_result(const nlohmann::json& j, const std::string& where = "result");

// Prints `r` in `version`: 0.3.x/0.4.0 add ips[].version, 1.0.0 drops it; fields newer
// than `version` are dropped. Throws Error{kErrIncompatibleVersion} for an unknown version.
nlohmann::json result_to_json(const Result& r, const std::string& version);

nlohmann::json dns_to_json(const Dns& d);
Dns parse_dns(const nlohmann::json& j, const std::string& where);

}  // namespace cni
