#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/core/mac.h"
#include "libcni/kernel/netlink.h"

// Neighbour entries (ARP / NDP) over RTM_*NEIGH: the permanent entries an overlay programs
// for its remote next hops (a remote VTEP address -> its MAC, flannel style), and proxy
// entries (NTF_PROXY) that make a device answer neighbour solicitations for an address it
// does not hold (proxy NDP for a routed pod's link-local gateway).
namespace cni {

struct NeighSpec {
  int ifindex = 0;
  IpAddress dst{};
  std::optional<MacAddress> lladdr{};  // required unless proxy
  bool proxy = false;                  // NTF_PROXY: answered for, no lladdr
  bool operator==(const NeighSpec&) const = default;
};

// Adds or replaces a permanent (NUD_PERMANENT) entry. Throws NetlinkError
// `failed to add neighbour 10.1.0.0 lladdr 02:..:01 dev if5: ...`.
void replace_neighbour(NlSocket& sock, const NeighSpec& neigh);
// ENOENT when there is none.
void delete_neighbour(NlSocket& sock, const NeighSpec& neigh);
bool delete_neighbour_if_exists(NlSocket& sock, const NeighSpec& neigh);

struct NeighInfo {
  int ifindex = 0;
  IpAddress dst{};
  std::optional<MacAddress> lladdr{};
  uint16_t state = 0;  // NUD_*
  uint8_t flags = 0;   // NTF_*
  bool permanent() const;
};
// The IPv4 and IPv6 (`family`: AF_INET, AF_INET6, AF_UNSPEC for both) neighbour entries, of
// one device when `ifindex` is set. Proxy entries are not part of the dump.
std::vector<NeighInfo> list_neighbours(NlSocket& sock, int family = AF_UNSPEC,
                                       std::optional<int> ifindex = std::nullopt);

// ---- the request and the dump under the verbs above and fdb.h's ----

// One RTM_NEWNEIGH / RTM_DELNEIGH: the ndmsg fields and NDA_DST / NDA_LLADDR.
struct NeighRequest {
  uint8_t family = AF_UNSPEC;  // AF_INET, AF_INET6, AF_BRIDGE
  int ifindex = 0;
  uint16_t state = 0;  // NUD_*
  uint8_t flags = 0;   // NTF_*
  std::optional<IpAddress> dst{};
  std::optional<MacAddress> lladdr{};
};
// Throws NetlinkError(what, ...).
void neighbour_request(NlSocket& sock, int type, int nl_flags, const NeighRequest& req,
                       const std::string& what);
// Every entry of the AF_UNSPEC dump (IPv4, IPv6 and bridge FDB entries), as NeighRequest
// fields (`family` tells them apart).
std::vector<NeighRequest> dump_neighbours(NlSocket& sock);

}  // namespace cni
