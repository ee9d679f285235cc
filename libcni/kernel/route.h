#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/kernel/netlink.h"
#include "libcni/protocol/result.h"

// Routes over RTM_*ROUTE: one RouteSpec describes a route to add, replace or delete, and
// is what list_routes reads back.
namespace cni {

inline constexpr uint32_t kMainTable = 254;   // RT_TABLE_MAIN
inline constexpr uint32_t kLocalTable = 255;  // RT_TABLE_LOCAL

enum class RouteType : uint8_t {  // RTN_*
  kUnicast = 1,
  kLocal = 2,
  kBroadcast = 3,
  kAnycast = 4,
  kMulticast = 5,
  kBlackhole = 6,
  kUnreachable = 7,
  kProhibit = 8,
  kThrow = 9,
};

enum class RouteScope : uint8_t {  // RT_SCOPE_*; the values of cni::Route::scope
  kUniverse = 0,
  kSite = 200,
  kLink = 253,
  kHost = 254,
  kNowhere = 255,
};

struct RouteSpec {
  IpNet dst{};  // host bits are cleared when sent; the default route is 0.0.0.0/0 or ::/0
  std::optional<IpAddress> gw{};  // same family as dst
  int ifindex = 0;                // 0: none (blackhole, or let the kernel pick from gw)
  // Unset: what `ip route add` picks: link for an IPv4 unicast route without a gateway,
  // host for a local route, universe otherwise. When deleting, unset matches any scope.
  std::optional<RouteScope> scope{};
  bool onlink = false;  // RTNH_F_ONLINK: trust that gw is on the link (overlay next hops)
  uint32_t table = kMainTable;
  std::optional<uint32_t> priority{};  // the metric; unset: 0 (IPv4) or 1024 (IPv6)
  RouteType type = RouteType::kUnicast;
  std::optional<uint32_t> mtu{};     // RTAX_MTU
  std::optional<uint32_t> advmss{};  // RTAX_ADVMSS
  // Unset: RTPROT_BOOT (3) like iproute2 and upstream's netlink library. When deleting,
  // unset matches any protocol.
  std::optional<uint8_t> protocol{};
  std::optional<IpAddress> src{};  // RTA_PREFSRC

  // `10.1.0.0/27 via 192.0.2.2 dev if5 onlink table 100 metric 10`; `dev_name` replaces
  // "if<index>" when the caller knows the name.
  std::string str(const std::string& dev_name = "") const;
  bool operator==(const RouteSpec&) const = default;
};

// A result route (cni::Route) as a RouteSpec on `ifindex`. Fields the result leaves out
// keep RouteSpec's defaults; a gateway-less route stays gateway-less (picking the
// interface's gateway is the caller's policy, as in upstream ipam.ConfigureIface).
RouteSpec route_spec_from(const Route& route, int ifindex);

// NLM_F_EXCL: an existing identical route is EEXIST. Errors name the route and device:
// `failed to add route 10.1.0.0/27 via 192.0.2.2 dev eth0: Network is unreachable`.
void add_route(NlSocket& sock, const RouteSpec& route);
// Adds or replaces the route with the same destination, table, type and metric.
void replace_route(NlSocket& sock, const RouteSpec& route);
// Deletes the route matching every field set in `route`; ESRCH when none matches.
void delete_route(NlSocket& sock, const RouteSpec& route);
// false when no route matched.
bool delete_route_if_exists(NlSocket& sock, const RouteSpec& route);

struct RouteFilter {
  std::optional<uint32_t> table = kMainTable;  // nullopt: every table, local included
  std::optional<int> ifindex{};                // routes whose (first) next hop uses it
};
// Routes of `family` (AF_INET, AF_INET6, AF_UNSPEC for both), route cache entries left
// out. A multipath route is reported with its first next hop.
std::vector<RouteSpec> list_routes(NlSocket& sock, int family, const RouteFilter& filter = {});

}  // namespace cni
