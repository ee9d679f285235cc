#include "overlay/config.h"

#include <sys/socket.h>

#include <algorithm>

#include "libcni/core/error.h"
#include "libcni/kernel/addr.h"
#include "libcni/protocol/fields.h"

namespace overlay {

namespace {

using cni::Error;

constexpr char kGlobalIpam[] = "global-ipam";
constexpr int kMinMtu = 68;  // RFC 791: every IPv4 host takes 68-byte datagrams
constexpr int kMaxMtu = 65535;

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

[[noreturn]] void invalid(const std::string& msg) {
  throw Error(cni::kErrInvalidConfig, "invalid config: " + msg);
}

}  // namespace

OverlayConfig parse_overlay_config(const cni::NetConf& conf, const cni::EnvMap& environ,
                                   const std::string& plugin) {
  cni::Fields f(conf.raw, "");
  OverlayConfig c;
  c.network = conf.name;
  c.underlay_interface = f.str_or("underlayInterface", "");
  if (!c.underlay_interface.empty()) {
    const std::string& n = c.underlay_interface;
    if (n.size() > 15 || n == "." || n == ".." ||
        n.find_first_of("/: \t\n\r") != std::string::npos || n.find('\0') != std::string::npos) {
      f.fail("underlayInterface", cni::quote_value(n) + " is not an interface name");
    }
  }
  c.local_address = f.ip("localAddress");
  c.mtu = static_cast<int>(f.integer("mtu", 0, kMaxMtu).value_or(0));
  if (c.mtu != 0 && c.mtu < kMinMtu) {
    f.fail("mtu",
           std::to_string(c.mtu) + " is below the IPv4 minimum of " + std::to_string(kMinMtu));
  }

  if (!conf.ipam.is_object()) {
    invalid("\"ipam\" is required: the " + plugin + " plugin needs " + in_quotes(kGlobalIpam));
  }
  cni::Fields ipam(conf.ipam, "ipam");
  const std::string type = ipam.str_or("type", "");
  if (type != kGlobalIpam) {
    ipam.fail("type", cni::quote_value(type) + ": the " + plugin + " plugin needs " +
                          in_quotes(kGlobalIpam) +
                          ", whose node-affine blocks are what routes to other nodes follow");
  }
  c.ipam = ipam::parse_global_ipam(conf.ipam, "ipam", environ);
  c.ipam.network = conf.name;
  return c;
}

Underlay resolve_underlay(cni::NlSocket& sock, const OverlayConfig& cfg, const Overhead& overhead) {
  Underlay u;
  if (cfg.underlay_interface.empty()) {
    auto link = cni::default_route_link(sock, AF_INET);
    if (!link) link = cni::default_route_link(sock, AF_INET6);
    if (!link) {
      invalid(
          "\"underlayInterface\" is not set and the host netns has no default route to "
          "take the underlay from");
    }
    u.link = *link;
  } else {
    auto link = cni::find_link(sock, cfg.underlay_interface);
    if (!link) {
      invalid("\"underlayInterface\": " + in_quotes(cfg.underlay_interface) +
              " does not exist in the host netns");
    }
    u.link = *link;
  }

  std::vector<cni::AddressState> addrs = cni::list_address_states(sock, u.link.index);
  if (cfg.local_address) {
    const bool held = std::any_of(addrs.begin(), addrs.end(), [&](const cni::AddressState& a) {
      return a.address.ip == *cfg.local_address;
    });
    if (!held) {
      invalid("\"localAddress\": " + cfg.local_address->str() + " is not an address of " +
              in_quotes(u.link.name));
    }
    u.local = *cfg.local_address;
  } else {
    std::optional<cni::IpAddress> v4, v6;
    for (const auto& a : addrs) {
      if (a.address.ip.is_v4() && !v4) v4 = a.address.ip;
      if (a.address.ip.is_v6() && !v6 && a.scope == 0 && !a.tentative && !a.dad_failed) {
        v6 = a.address.ip;
      }
    }
    if (!v4 && !v6) {
      invalid("\"localAddress\" is not set and underlay " + in_quotes(u.link.name) +
              " has no address to take it from");
    }
    u.local = v4 ? *v4 : *v6;
  }

  for (const auto& a : addrs) {
    if (a.address.ip == u.local) u.local_prefix = a.address.prefix;
  }

  const int over = u.local.is_v4() ? overhead.v4 : overhead.v6;
  const int most = u.link.mtu - over;
  if (cfg.mtu > most) {
    invalid("\"mtu\": " + std::to_string(cfg.mtu) + " is more than underlay " +
            in_quotes(u.link.name) + " can carry: its MTU " + std::to_string(u.link.mtu) +
            " less the tunnel's " + std::to_string(over) + " bytes is " + std::to_string(most));
  }
  if (cfg.mtu == 0 && most < kMinMtu) {
    invalid("underlay " + in_quotes(u.link.name) + " has MTU " + std::to_string(u.link.mtu) +
            ", too small for a tunnel (" + std::to_string(over) + " bytes of overhead)");
  }
  u.tunnel_mtu = cfg.mtu != 0 ? cfg.mtu : most;
  return u;
}

}  // namespace overlay
