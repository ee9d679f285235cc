#pragma once

#include <chrono>
#include <optional>

#include "libcni/core/log.h"
#include "libcni/core/mac.h"
#include "libcni/iface/settle.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/protocol/result.h"

// Configuring a pod's interface from a result: upstream's ipam.ConfigureIface (IPv6
// enablement, addresses, link up, the DAD wait, routes) plus the announcement sysctls
// upstream's macvlan sets. Every plugin that hands a pod an interface runs it once the
// interface sits in the pod netns under its final name: macvlan today (the defaults are its
// behaviour); vxlan and ipip for the pod end of their veth (host addresses, a link-local
// gateway reached onlink, no subnet route); sriov for the VF (its MTU and MAC).
namespace cni {

struct ConfigureOptions {
  // arp_notify and ndisc_notify on the interface, best effort (ndisc_notify is missing without
  // IPv6): the kernel then sends a gratuitous ARP when the link goes up and an unsolicited NA
  // when DAD completes, so neighbours learn the MAC of an address that moved.
  bool announce = true;
  // Each address as /32 or /128 instead of the result's prefix: a routed pod has no subnet on
  // its link, so the kernel adds no subnet route; it reaches its gateway onlink.
  bool host_addresses = false;
  // Flags of every address added (nodad, noprefixroute, scope).
  AddressOptions address{};
  // true (upstream): a route without a gateway goes via the interface's first gateway of the
  // route's family. false: routes as given, a gateway-less one is a device route.
  bool route_via_interface_gateway = true;
  // Every route with a gateway gets RTNH_F_ONLINK: the gateway is on no subnet of the link
  // (the overlays' link-local gateway, answered by proxy ARP/NDP on the host end).
  bool onlink = false;
  // Set while the link is still down (a VF keeps what its previous user left).
  std::optional<int> mtu{};
  std::optional<MacAddress> mac{};
  // How long to wait for DAD when an address has an IPv6 gateway (upstream's rule).
  std::chrono::milliseconds settle_timeout = kSettleTimeout;
  // false: IPv6 duplicate address detection off on the interface (accept_dad=0 while it is
  // still down) and no wait. For a veth end whose only neighbour is its own peer, where no
  // duplicate can exist: the routed overlays' pod end, whose link-local address must answer
  // at once, or the first packets of a dual-stack pod wait a second for DAD.
  bool dad = true;
  // The caller brought the link up already (a link with no address yet: nothing to announce,
  // no DAD to mind): the addresses and routes go on a link that is up, and the request to
  // bring it up is not sent again.
  bool already_up = false;
};

// Configures `link`, which lives in `netns` (`sock` is bound to it), with the addresses of
// result.ips whose `interface` is `iface_index`, brings it up, waits for DAD when one of them
// has an IPv6 gateway, and adds result.routes through it. The sysctls are written inside
// `netns` (a NetnsGuard for just those writes). Failures throw (NetlinkError naming the
// address or route, std::system_error naming the sysctl, Error for a failed DAD); nothing is
// undone here: the caller's rollback deletes the link, which takes its addresses and routes.
void configure_interface(const Netns& netns, NlSocket& sock, const LinkInfo& link,
                         const Result& result, int iface_index, Logger& log,
                         const ConfigureOptions& options = {});

}  // namespace cni
