#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

// IPv4-in-IPv4 tunnels (IFLA_INFO_KIND "ipip", module ipip). Two kinds of device:
// - a tunnel of our own, made with create_ipip: fixed local/remote endpoints, or none
//   (0.0.0.0) for a device whose routes name the remote (`via <node> dev <tunnel> onlink`);
// - the fallback device `tunl0` that loading the module makes in every netns (unless
//   net.core.fb_tunnels_only_for_init_net says otherwise): it takes every IPIP packet no other
//   tunnel matches, so it is the device Calico routes other nodes' blocks through, and the
//   one the ipip plugin configures (MTU 1480 under a 1500 underlay, up, the node's address).
namespace cni {

inline constexpr std::string_view kIpipFallbackName = "tunl0";

struct IpipSpec {
  std::string name{};
  std::optional<IpAddress> local{};   // IPv4; unset: any
  std::optional<IpAddress> remote{};  // IPv4; unset: any (the route names the next hop)
  uint8_t ttl = 0;                    // 0: inherit the inner packet's
  uint8_t tos = 0;                    // 1: inherit
  bool pmtudisc = true;               // the kernel's default; false needs ttl 0
  int link_index = 0;                 // IFLA_IPTUN_LINK: bind to this underlay device
  int mtu = 0;                        // 0: the kernel's (underlay MTU - 20)
  std::optional<int> netns_fd{};      // create it directly in this netns (LinkAttrs)
};
// Throws NetlinkError `failed to create ipip link "tun0": ...`; std::invalid_argument for an
// IPv6 endpoint or for pmtudisc false with a fixed ttl (the kernel sets DF for any fixed TTL,
// so it would quietly keep path MTU discovery; iproute2 refuses it too). The kernel keys tunnels by
// (local, remote, underlay): one with none of them is tunl0's, EEXIST while the fallback device
// exists.
void create_ipip(NlSocket& sock, const IpipSpec& spec);

// What an ipip device's IFLA_INFO_DATA says.
struct IpipInfo {
  std::optional<IpAddress> local{};  // nullopt: any
  std::optional<IpAddress> remote{};
  uint8_t ttl = 0;
  uint8_t tos = 0;
  bool pmtudisc = false;
  int link_index = 0;
  bool operator==(const IpipInfo&) const = default;
};
// nullopt when there is no such device or it is not an ipip tunnel.
std::optional<IpipInfo> find_ipip(NlSocket& sock, const LinkRef& link);

// tunl0 of the socket's netns; nullopt when the module is not loaded (or fallback devices
// are only made in the initial netns).
std::optional<LinkInfo> find_ipip_fallback(NlSocket& sock);

struct IpipFallbackSettings {
  std::optional<int> mtu{};
  std::vector<IpNet> addresses{};  // added unless already there
  bool up = true;
};
// Configures tunl0 and returns it as it is then. Throws NetlinkError naming the setting, or
// ENODEV `ipip fallback device "tunl0" not found in this netns (is the ipip module loaded?)`.
LinkInfo configure_ipip_fallback(NlSocket& sock, const IpipFallbackSettings& settings);

}  // namespace cni
