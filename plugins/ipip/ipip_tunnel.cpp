#include "plugins/ipip/ipip_tunnel.h"

#include <cerrno>

#include "libcni/core/error.h"
#include "libcni/iface/check.h"
#include "libcni/kernel/ipip_link.h"
#include "libcni/kernel/link.h"

namespace ipip {

namespace {

// A probe's name: ipip links of the same parameters (none) are one per netns, so concurrent
// probes meet at EEXIST, which answers the question as well.
constexpr char kProbeName[] = "strait.ipprobe";

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// EOPNOTSUPP is rtnetlink's "Unknown device type": no such link kind built in or loadable.
[[noreturn]] void no_ipip(const cni::NetlinkError& e) {
  throw cni::Error(cni::kErrNotAvailable,
                   "the kernel lacks ipip support (CONFIG_NET_IPIP): there is no \"tunl0\" "
                   "and creating an ipip link failed: " +
                       std::string(e.what()));
}

}  // namespace

IpipTunnel::IpipTunnel(const IpipConfig& cfg, const overlay::Underlay& underlay)
    : cfg_(cfg), underlay_(underlay), device_(cni::kIpipFallbackName) {}

void IpipTunnel::require_support(cni::NlSocket& sock) {
  if (!underlay_.local.is_v4()) {
    throw cni::Error(cni::kErrInvalidConfig,
                     "invalid config: \"localAddress\": " + underlay_.local.str() +
                         " is IPv6; ipip carries IPv4 over an IPv4 underlay");
  }
  if (auto link = cni::find_link(sock, device_)) {
    if (link->kind == "ipip") return;
    throw cni::Error(cni::kErrNotAvailable, in_quotes(device_) +
                                                " exists in the host netns and is " +
                                                cni::describe_kind(*link) + ", not ipip");
  }
  // No tunl0: the module is not loaded (and this process may not load it), or fallback
  // devices are kept to the initial netns (net.core.fb_tunnels_only_for_init_net). Ask the
  // kernel itself.
  cni::IpipSpec probe;
  probe.name = kProbeName;
  try {
    cni::create_ipip(sock, probe);
  } catch (const cni::NetlinkError& e) {
    if (e.sys_errno() == EEXIST) return;
    if (e.sys_errno() == EOPNOTSUPP) no_ipip(e);
    throw;
  }
  cni::delete_link_if_exists(sock, std::string(kProbeName));
}

cni::LinkInfo IpipTunnel::ensure_device(cni::NlSocket& sock, overlay::Writes& writes, bool* created,
                                        cni::Logger& log) {
  *created = false;
  const int mtu = underlay_.tunnel_mtu;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto link = cni::find_link(sock, device_);
    if (link && link->kind != "ipip") {
      throw cni::Error(cni::kErrNotAvailable, in_quotes(device_) +
                                                  " exists in the host netns and is " +
                                                  cni::describe_kind(*link) + ", not ipip");
    }
    if (link) {
      if (link->mtu != mtu) {
        log.info("setting the MTU of " + in_quotes(device_) + " to " + std::to_string(mtu) +
                 " (it was " + std::to_string(link->mtu) + ")");
        cni::set_link_mtu(sock, link->index, mtu);
        ++writes.node;
      }
      if (!link->up) {
        log.info("setting " + in_quotes(device_) + " up");
        cni::set_link_up(sock, link->index);
        ++writes.node;
      }
      if (link->mtu != mtu || !link->up) link = cni::get_link(sock, link->index);
      return *link;
    }
    // The module's own tunl0 is missing (fallback devices only in the initial netns): an
    // ipip link without endpoints is what the fallback device is, so make one of that name.
    cni::IpipSpec spec;
    spec.name = device_;
    spec.mtu = mtu;
    try {
      cni::create_ipip(sock, spec);
    } catch (const cni::NetlinkError& e) {
      if (e.sys_errno() == EEXIST) continue;  // another ADD or the agent made it just now
      if (e.sys_errno() == EOPNOTSUPP) no_ipip(e);
      throw;
    }
    ++writes.node;
    *created = true;
    log.info("created " + in_quotes(device_) + " (ipip, no endpoints) mtu " + std::to_string(mtu));
  }
  throw cni::Error(cni::kErrTryAgainLater,
                   "ipip device " + in_quotes(device_) + " keeps changing underneath");
}

void IpipTunnel::check_device(cni::NlSocket& sock) {
  auto link = cni::find_link(sock, device_);
  if (!link) cni::check_failed("ipip device " + in_quotes(device_) + " not found");
  if (link->kind != "ipip") {
    cni::check_failed(in_quotes(device_) + " is " + cni::describe_kind(*link) + ", not ipip");
  }
  if (link->mtu != underlay_.tunnel_mtu) {
    cni::check_failed("ipip device " + in_quotes(device_) + " has MTU " +
                      std::to_string(link->mtu) + ", the config says " +
                      std::to_string(underlay_.tunnel_mtu));
  }
  if (!link->up) cni::check_failed("ipip device " + in_quotes(device_) + " is down");
}

bool IpipTunnel::reachable(const overlay::OverlayNode& remote, std::string* why) const {
  if (!remote.underlay) {
    *why = "no underlay address";
    return false;
  }
  if (!remote.underlay->is_v4()) {
    *why = "underlay address " + remote.underlay->str() + " is not IPv4";
    return false;
  }
  return true;
}

bool IpipTunnel::same_subnet(const cni::IpAddress& remote) const {
  if (underlay_.local_prefix == 0) return false;
  return cni::IpNet{underlay_.local, underlay_.local_prefix}.network().contains(remote);
}

std::optional<cni::RouteSpec> IpipTunnel::route_to(const overlay::OverlayNode& remote,
                                                   const cni::IpNet& dst, int device_index) const {
  // IPIP carries IPv4 only: remote IPv6 blocks get no route (README: IPv6 pods across nodes).
  if (!dst.ip.is_v4() || !remote.underlay) return std::nullopt;
  cni::RouteSpec r;
  r.dst = dst;
  r.gw = *remote.underlay;
  if (cfg_.mode == Mode::kCrossSubnet && same_subnet(*remote.underlay)) {
    r.ifindex = underlay_.link.index;  // a neighbour on the underlay: no tunnel
  } else {
    r.ifindex = device_index;
    r.onlink = true;  // the next hop is on no subnet of tunl0; the tunnel sends to it
  }
  return r;
}

}  // namespace ipip
