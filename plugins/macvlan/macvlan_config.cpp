#include "plugins/macvlan/macvlan_config.h"

#include <limits>

#include "libcni/core/error.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/fields.h"

namespace macvlan {

namespace {

constexpr char kModes[] = "bridge, private, vepa, passthru";

std::optional<cni::MacvlanMode> parse_mode(const std::string& name) {
  // Upstream's modeFromString: "" is bridge; "source" needs an address list this plugin
  // has no key for, so it is refused like any unknown name.
  if (name.empty()) return cni::MacvlanMode::kBridge;
  auto mode = cni::parse_macvlan_mode(name);
  if (!mode || *mode == cni::MacvlanMode::kSource) return std::nullopt;
  return mode;
}

}  // namespace

IpamChoice parse_ipam_choice(const cni::NetConf& conf) {
  IpamChoice choice;
  cni::Fields ipam(conf.ipam, "ipam");
  // `{}` (or no ipam at all, for the lenient verbs) is upstream's "interface only".
  if (ipam.object_json().empty()) {
    choice.l2_only = true;
    return choice;
  }
  choice.type = ipam.required_str("type");
  return choice;
}

MacvlanConfig parse_config(const cni::NetConf& conf, const cni::CniArgs& cni_args) {
  cni::Fields f(conf.raw, "");
  MacvlanConfig c;

  c.master = f.str_or("master", "");
  // The name goes to the kernel as IFLA_IFNAME: one no device can have is a config fault
  // (code 7 naming the key), not a failed lookup (ERANGE, code 999).
  if (!c.master.empty()) {
    try {
      cni::validate_ifname(c.master, "master");
    } catch (const cni::Error&) {
      f.fail("master", cni::quote_value(c.master) +
                           " is not a valid interface name (1 to 15 bytes, no '/', ':' or "
                           "whitespace)");
    }
  }

  const std::string mode = f.str_or("mode", "");
  auto parsed_mode = parse_mode(mode);
  if (!parsed_mode) f.fail("mode", cni::quote_value(mode) + " is not one of " + kModes);
  c.mode = *parsed_mode;

  c.mtu = static_cast<int>(f.integer("mtu", 0, std::numeric_limits<int>::max()).value_or(0));
  c.link_in_container = f.boolean_or("linkInContainer", false);

  if (auto q = f.uinteger("bcqueuelen", std::numeric_limits<uint32_t>::max()); q && *q > 0) {
    c.bcqueuelen = static_cast<uint32_t>(*q);
  }

  // The documented contract (upstream README): ipam is required, `{}` for an interface
  // without addresses. A config that forgot it fails here instead of giving a pod an
  // interface without an address.
  if (conf.ipam.is_null()) {
    f.fail("ipam", "is required (use {} for an interface without IP addresses)");
  }
  IpamChoice ipam = parse_ipam_choice(conf);
  c.l2_only = ipam.l2_only;
  c.ipam_type = ipam.type;

  // Every MAC source is validated, the winner is runtimeConfig.mac > CNI_ARGS MAC > mac
  // (upstream loadConf).
  const cni::RequestedMac mac = cni::requested_mac(f, cni_args);
  c.mac = mac.mac;
  c.mac_source = mac.source;
  return c;
}

}  // namespace macvlan
