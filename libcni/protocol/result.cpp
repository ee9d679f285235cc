#include "libcni/protocol/result.h"

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"
#include "libcni/protocol/version.h"

namespace cni {

// Wire formats (SPEC.md "Result"; Go: containernetworking/cni pkg/types/040/types.go,
// pkg/types/100/types.go, pkg/types/types.go):
//   0.3.0 / 0.3.1 / 0.4.0  interfaces[{name,mac,sandbox}],
//                          ips[{version,interface,address,gateway}], routes[{dst,gw}], dns
//   1.0.0                  as above without ips[].version
//   1.1.0                  + interfaces[].mtu/.socketPath/.pciID,
//                            routes[].mtu/.advmss/.priority/.table/.scope
// Parsing reads every field we know whatever the declared version (as Go does for routes,
// whose type is shared by all versions); printing keeps only what the target version defines.

namespace {

using nlohmann::json;

// Versions whose results carry ips[].version (types040).
bool is_04x(std::string_view v) { return v == "0.3.0" || v == "0.3.1" || v == "0.4.0"; }

std::string supported_list() {
  std::string list;
  for (const auto& s : supported_versions()) list += (list.empty() ? "" : ", ") + s;
  return list;
}

bool is_supported(std::string_view v) {
  for (const auto& s : supported_versions()) {
    if (s == v) return true;
  }
  return false;
}

std::string join(const std::string& where, std::string_view key) {
  if (where.empty()) return std::string(key);
  return where + "." + std::string(key);
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw Error(kErrDecode, "failed to decode \"" + path + "\": " + why);
}

// The member `key` of `obj`; nullptr when absent or null (Go's decoder treats both alike).
const json* member(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& require_object(const json& v, const std::string& path) {
  if (!v.is_object()) fail(path, quote_value(v) + " is not an object");
  return v;
}

std::string get_string(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, quote_value(v) + " is not a string");
  return v.get<std::string>();
}

std::string opt_string(const json& obj, std::string_view key, const std::string& where) {
  const json* v = member(obj, key);
  return v ? get_string(*v, join(where, key)) : std::string();
}

std::optional<int> opt_int(const json& obj, std::string_view key, const std::string& where,
                           int64_t min, int64_t max) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  const std::string path = join(where, key);
  if (!v->is_number_integer()) fail(path, quote_value(*v) + " is not an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) {
    fail(path, quote_value(*v) + " is out of range [" + std::to_string(min) + ", " +
                   std::to_string(max) + "]");
  }
  const int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    fail(path, quote_value(*v) + " is out of range [" + std::to_string(min) + ", " +
                   std::to_string(max) + "]");
  }
  return static_cast<int>(n);
}

std::vector<std::string> opt_string_list(const json& obj, std::string_view key,
                                         const std::string& where) {
  std::vector<std::string> out;
  const json* v = member(obj, key);
  if (!v) return out;
  const std::string path = join(where, key);
  if (!v->is_array()) fail(path, quote_value(*v) + " is not an array of strings");
  for (size_t i = 0; i < v->size(); ++i) out.push_back(get_string((*v)[i], index(path, i)));
  return out;
}

// An array member as a list of objects; empty when absent.
const json* opt_array(const json& obj, std::string_view key, const std::string& where) {
  const json* v = member(obj, key);
  if (v && !v->is_array()) fail(join(where, key), quote_value(*v) + " is not an array");
  return v;
}

IpNet required_cidr(const json& obj, std::string_view key, const std::string& where) {
  const json* v = member(obj, key);
  const std::string path = join(where, key);
  if (!v) fail(path, "missing");
  auto n = IpNet::try_parse(get_string(*v, path));
  if (!n) fail(path, quote_value(*v) + " is not a CIDR");
  return *n;
}

std::optional<IpAddress> opt_ip(const json& obj, std::string_view key, const std::string& where) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  const std::string path = join(where, key);
  auto a = IpAddress::try_parse(get_string(*v, path));
  if (!a) fail(path, quote_value(*v) + " is not an IP address");
  return a;
}

Interface parse_interface(const json& v, const std::string& path) {
  require_object(v, path);
  Interface out;
  out.name = opt_string(v, "name", path);
  out.mac = opt_string(v, "mac", path);
  out.mtu = opt_int(v, "mtu", path, 0, INT_MAX);
  out.sandbox = opt_string(v, "sandbox", path);
  out.socket_path = opt_string(v, "socketPath", path);
  out.pci_id = opt_string(v, "pciID", path);
  return out;
}

IpConfig parse_ip(const json& v, const std::string& path, bool has_version,
                  size_t interface_count) {
  require_object(v, path);
  IpConfig out;
  out.address = required_cidr(v, "address", path);
  out.gateway = opt_ip(v, "gateway", path);
  out.interface = opt_int(v, "interface", path, 0, INT_MAX);
  if (out.interface && static_cast<size_t>(*out.interface) >= interface_count) {
    fail(join(path, "interface"), std::to_string(*out.interface) + " is out of range: the " +
                                      "result has " + std::to_string(interface_count) +
                                      " interface(s)");
  }
  if (has_version) {
    // types040 requires "4" or "6"; Go's decoder accepts a missing one, and so do we. A
    // present one must agree with the address, or a 0.2.0 conversion would misfile it.
    if (const json* ver = member(v, "version")) {
      const std::string vpath = join(path, "version");
      const std::string s = get_string(*ver, vpath);
      if (s != "4" && s != "6") fail(vpath, quote_value(*ver) + " is not \"4\" or \"6\"");
      const std::string family = out.address.ip.is_v4() ? "4" : "6";
      if (s != family) {
        fail(vpath, quote_value(*ver) + " does not match address \"" + out.address.str() +
                        "\" (IPv" + family + ")");
      }
    }
  }
  if (out.gateway && out.gateway->family() != out.address.ip.family()) {
    fail(join(path, "gateway"),
         "\"" + out.gateway->str() + "\" is not in the family of \"" + out.address.str() + "\"");
  }
  return out;
}

Route parse_route(const json& v, const std::string& path) {
  require_object(v, path);
  Route out;
  out.dst = required_cidr(v, "dst", path);
  // No family check on gw: an IPv4 route via an IPv6 next hop is valid (RFC 5549).
  out.gw = opt_ip(v, "gw", path);
  out.mtu = opt_int(v, "mtu", path, 0, INT_MAX);
  out.advmss = opt_int(v, "advmss", path, 0, INT_MAX);
  out.priority = opt_int(v, "priority", path, 0, INT_MAX);
  out.table = opt_int(v, "table", path, 0, INT_MAX);
  out.scope = opt_int(v, "scope", path, 0, 255);
  return out;
}

json interface_to_json(const Interface& i, bool v110) {
  // Go: name has no omitempty; the rest are omitempty (an mtu of 0 means unset). Go's
  // types100 prints the 1.1.0 fields in 1.0.0 too (one struct for both); the 1.0.0 schema
  // does not define them, so we drop them.
  json j = json::object();
  j["name"] = i.name;
  if (!i.mac.empty()) j["mac"] = i.mac;
  if (!i.sandbox.empty()) j["sandbox"] = i.sandbox;
  if (v110) {
    if (i.mtu && *i.mtu != 0) j["mtu"] = *i.mtu;
    if (!i.socket_path.empty()) j["socketPath"] = i.socket_path;
    if (!i.pci_id.empty()) j["pciID"] = i.pci_id;
  }
  return j;
}

json ip_to_json(const IpConfig& ip, bool with_version) {
  json j = json::object();
  // types100 convertIPConfigTo040: "4" when the address is IPv4, else "6".
  if (with_version) j["version"] = ip.address.ip.is_v4() ? "4" : "6";
  if (ip.interface) j["interface"] = *ip.interface;
  j["address"] = ip.address.str();
  if (ip.gateway) j["gateway"] = ip.gateway->str();
  return j;
}

json route_to_json(const Route& r, bool v110) {
  json j = json::object();
  j["dst"] = r.dst.str();
  if (r.gw) j["gw"] = r.gw->str();
  // Go's types.Route prints these in every version (the type is shared); the 0.x and 1.0.0
  // schemas do not define them, so a down-conversion drops them. mtu, advmss and priority
  // are Go ints with omitempty (0 = unset); table and scope are *int (0 is a value).
  if (v110) {
    if (r.mtu && *r.mtu != 0) j["mtu"] = *r.mtu;
    if (r.advmss && *r.advmss != 0) j["advmss"] = *r.advmss;
    if (r.priority && *r.priority != 0) j["priority"] = *r.priority;
    if (r.table) j["table"] = *r.table;
    if (r.scope) j["scope"] = *r.scope;
  }
  return j;
}

}  // namespace

Dns parse_dns(const json& j, const std::string& where) {
  Dns out;
  if (j.is_null()) return out;
  require_object(j, where);
  out.nameservers = opt_string_list(j, "nameservers", where);
  out.domain = opt_string(j, "domain", where);
  out.search = opt_string_list(j, "search", where);
  out.options = opt_string_list(j, "options", where);
  return out;
}

json dns_to_json(const Dns& d) {
  // Go types.DNS: every field omitempty.
  json j = json::object();
  if (!d.nameservers.empty()) j["nameservers"] = d.nameservers;
  if (!d.domain.empty()) j["domain"] = d.domain;
  if (!d.search.empty()) j["search"] = d.search;
  if (!d.options.empty()) j["options"] = d.options;
  return j;
}

Result parse_result(const json& j, const std::string& where) {
  require_object(j, where);
  const json* ver = member(j, "cniVersion");
  if (!ver) {
    // A result without cniVersion is a 0.1.0 one (pkg/types/create DecodeVersion).
    throw Error(kErrIncompatibleVersion, "incompatible CNI version: \"" + where +
                                             "\" has no cniVersion, which means 0.1.0; "
                                             "supported are " +
                                             supported_list());
  }
  Result r;
  r.cni_version = get_string(*ver, join(where, "cniVersion"));
  if (!is_supported(r.cni_version)) {
    throw Error(kErrIncompatibleVersion, "incompatible CNI version \"" + r.cni_version +
                                             "\" of \"" + where + "\": supported are " +
                                             supported_list());
  }

  if (const json* a = opt_array(j, "interfaces", where)) {
    const std::string path = join(where, "interfaces");
    for (size_t i = 0; i < a->size(); ++i) {
      r.interfaces.push_back(parse_interface((*a)[i], index(path, i)));
    }
  }
  if (const json* a = opt_array(j, "ips", where)) {
    const std::string path = join(where, "ips");
    const bool has_version = is_04x(r.cni_version);
    for (size_t i = 0; i < a->size(); ++i) {
      r.ips.push_back(parse_ip((*a)[i], index(path, i), has_version, r.interfaces.size()));
    }
  }
  if (const json* a = opt_array(j, "routes", where)) {
    const std::string path = join(where, "routes");
    for (size_t i = 0; i < a->size(); ++i) {
      r.routes.push_back(parse_route((*a)[i], index(path, i)));
    }
  }
  if (const json* d = member(j, "dns")) r.dns = parse_dns(*d, join(where, "dns"));
  return r;
}

json result_to_json(const Result& r, const std::string& version) {
  if (!is_supported(version)) {
    throw Error(kErrIncompatibleVersion, "cannot print a result in incompatible CNI version \"" +
                                             version + "\": supported are " + supported_list());
  }
  const bool v04x = is_04x(version);
  const bool v110 = version_at_least(version, "1.1.0");

  json j = json::object();
  j["cniVersion"] = version;
  // Go: interfaces, ips and routes are omitempty slices.
  if (!r.interfaces.empty()) {
    json a = json::array();
    for (const auto& i : r.interfaces) a.push_back(interface_to_json(i, v110));
    j["interfaces"] = std::move(a);
  }
  if (!r.ips.empty()) {
    json a = json::array();
    for (const auto& ip : r.ips) a.push_back(ip_to_json(ip, v04x));
    j["ips"] = std::move(a);
  }
  if (!r.routes.empty()) {
    json a = json::array();
    for (const auto& rt : r.routes) a.push_back(route_to_json(rt, v110));
    j["routes"] = std::move(a);
  }
  // types040.Result has a plain struct `DNS types.DNS json:"dns,omitempty"`, which
  // encoding/json never omits, so 0.3.x/0.4.0 results always carry "dns" (maybe {}).
  // types100.Result drops an empty dns in its MarshalJSON (containernetworking/cni#1039,
  // libcni v1.2.0).
  if (v04x || !r.dns.empty()) j["dns"] = dns_to_json(r.dns);
  return j;
}

}  // namespace cni
