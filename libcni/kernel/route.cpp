#include "libcni/kernel/route.h"

#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <stdexcept>

#include "libcni/kernel/link.h"

namespace cni {

std::string RouteSpec::str(const std::string& dev_name) const {
  std::string s;
  switch (type) {
    case RouteType::kUnicast:
      break;
    case RouteType::kLocal:
      s = "local ";
      break;
    case RouteType::kBroadcast:
      s = "broadcast ";
      break;
    case RouteType::kAnycast:
      s = "anycast ";
      break;
    case RouteType::kMulticast:
      s = "multicast ";
      break;
    case RouteType::kBlackhole:
      s = "blackhole ";
      break;
    case RouteType::kUnreachable:
      s = "unreachable ";
      break;
    case RouteType::kProhibit:
      s = "prohibit ";
      break;
    case RouteType::kThrow:
      s = "throw ";
      break;
  }
  s += dst.network().str();
  if (gw) s += " via " + gw->str();
  if (ifindex > 0) s += " dev " + (dev_name.empty() ? "if" + std::to_string(ifindex) : dev_name);
  if (onlink) s += " onlink";
  if (table != kMainTable) s += " table " + std::to_string(table);
  if (priority) s += " metric " + std::to_string(*priority);
  if (mtu) s += " mtu " + std::to_string(*mtu);
  if (advmss) s += " advmss " + std::to_string(*advmss);
  return s;
}

RouteSpec route_spec_from(const Route& route, int ifindex) {
  RouteSpec spec;
  spec.dst = route.dst;
  spec.gw = route.gw;
  spec.ifindex = ifindex;
  if (route.mtu) spec.mtu = static_cast<uint32_t>(*route.mtu);
  if (route.advmss) spec.advmss = static_cast<uint32_t>(*route.advmss);
  if (route.priority) spec.priority = static_cast<uint32_t>(*route.priority);
  if (route.table) spec.table = static_cast<uint32_t>(*route.table);
  if (route.scope) spec.scope = static_cast<RouteScope>(*route.scope);
  return spec;
}

namespace {

uint8_t default_scope(const RouteSpec& r) {
  // iproute2's rule (iproute.c, iproute_modify).
  if (r.type == RouteType::kLocal) return RT_SCOPE_HOST;
  if (r.dst.ip.is_v6()) return RT_SCOPE_UNIVERSE;
  if (r.type == RouteType::kBroadcast || r.type == RouteType::kMulticast ||
      r.type == RouteType::kAnycast) {
    return RT_SCOPE_LINK;
  }
  if (r.type == RouteType::kUnicast && !r.gw) return RT_SCOPE_LINK;
  return RT_SCOPE_UNIVERSE;
}

// "dev eth0" when the name can be found, for error messages only.
std::string device_name(NlSocket& sock, int ifindex) {
  if (ifindex <= 0) return {};
  try {
    if (auto link = find_link(sock, ifindex)) return link->name;
  } catch (const std::exception&) {
    // The message falls back to if<index>.
  }
  return {};
}

void route_request(NlSocket& sock, int type, int flags, const RouteSpec& r, const char* verb) {
  const bool deleting = type == RTM_DELROUTE;
  const int family = r.dst.ip.family();
  if (family != AF_INET && family != AF_INET6) {
    throw std::invalid_argument(std::string("cannot ") + verb + " a route without destination");
  }
  if (r.gw && r.gw->family() != family) {
    throw std::invalid_argument(std::string("cannot ") + verb + " route " + r.str() +
                                ": gateway and destination families differ");
  }
  NlMessage msg(type, flags);
  rtmsg m{};
  m.rtm_family = static_cast<unsigned char>(family);
  m.rtm_dst_len = static_cast<unsigned char>(r.dst.prefix);
  m.rtm_table = static_cast<unsigned char>(r.table < 256 ? r.table : RT_TABLE_UNSPEC);
  m.rtm_protocol = r.protocol ? *r.protocol : (deleting ? RTPROT_UNSPEC : RTPROT_BOOT);
  m.rtm_scope = r.scope ? static_cast<unsigned char>(*r.scope)
                        : (deleting ? uint8_t{RT_SCOPE_NOWHERE} : default_scope(r));
  m.rtm_type = static_cast<unsigned char>(r.type);
  m.rtm_flags = r.onlink ? RTNH_F_ONLINK : 0;
  msg.put_header(m);
  msg.put_u32(RTA_TABLE, r.table);
  if (r.dst.prefix > 0) msg.put_address(RTA_DST, r.dst.network().ip);
  if (r.gw) msg.put_address(RTA_GATEWAY, *r.gw);
  if (r.ifindex > 0) msg.put_u32(RTA_OIF, static_cast<uint32_t>(r.ifindex));
  if (r.priority) msg.put_u32(RTA_PRIORITY, *r.priority);
  if (r.src) msg.put_address(RTA_PREFSRC, *r.src);
  if (r.mtu || r.advmss) {
    msg.nest(RTA_METRICS, [&] {
      if (r.mtu) msg.put_u32(RTAX_MTU, *r.mtu);
      if (r.advmss) msg.put_u32(RTAX_ADVMSS, *r.advmss);
    });
  }
  try {
    sock.request(msg, "");
  } catch (const NetlinkError& e) {
    throw NetlinkError(
        std::string("failed to ") + verb + " route " + r.str(device_name(sock, r.ifindex)),
        e.nl_error(), e.sys_errno(), e.kernel_message());
  }
}

}  // namespace

void add_route(NlSocket& sock, const RouteSpec& route) {
  route_request(sock, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route, "add");
}

void replace_route(NlSocket& sock, const RouteSpec& route) {
  route_request(sock, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, route, "replace");
}

void delete_route(NlSocket& sock, const RouteSpec& route) {
  route_request(sock, RTM_DELROUTE, 0, route, "delete");
}

bool delete_route_if_exists(NlSocket& sock, const RouteSpec& route) {
  try {
    delete_route(sock, route);
    return true;
  } catch (const NetlinkError& e) {
    if (e.sys_errno() == ESRCH) return false;
    throw;
  }
}

std::vector<RouteSpec> list_routes(NlSocket& sock, int family, const RouteFilter& filter) {
  NlCachePtr cache = sock.dump("failed to list routes", [family](nl_sock* s, nl_cache** c) {
    return rtnl_route_alloc_cache(s, family, 0, c);
  });
  std::vector<RouteSpec> routes;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    const int f = rtnl_route_get_family(r);
    if (f != AF_INET && f != AF_INET6) continue;
    if (family != AF_UNSPEC && f != family) continue;
    if (rtnl_route_get_flags(r) & RTM_F_CLONED) continue;
    RouteSpec spec;
    spec.table = rtnl_route_get_table(r);
    if (filter.table && spec.table != *filter.table) continue;
    if (auto dst = ipnet_from_nl_addr(rtnl_route_get_dst(r))) {
      spec.dst = *dst;
    } else {
      static constexpr uint8_t kZero[16] = {};
      spec.dst = IpNet{IpAddress::from_bytes(f, kZero), 0};
    }
    spec.type = static_cast<RouteType>(rtnl_route_get_type(r));
    spec.scope = static_cast<RouteScope>(rtnl_route_get_scope(r));
    spec.protocol = rtnl_route_get_protocol(r);
    spec.priority = rtnl_route_get_priority(r);
    spec.onlink = (rtnl_route_get_flags(r) & RTNH_F_ONLINK) != 0;
    if (uint32_t v = 0; rtnl_route_get_metric(r, RTAX_MTU, &v) == 0 && v != 0) spec.mtu = v;
    if (uint32_t v = 0; rtnl_route_get_metric(r, RTAX_ADVMSS, &v) == 0 && v != 0) spec.advmss = v;
    if (nl_addr* src = rtnl_route_get_pref_src(r)) spec.src = from_nl_addr(src);
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      spec.ifindex = rtnl_route_nh_get_ifindex(nh);
      if (nl_addr* gw = rtnl_route_nh_get_gateway(nh)) spec.gw = from_nl_addr(gw);
      if (rtnl_route_nh_get_flags(nh) & RTNH_F_ONLINK) spec.onlink = true;
    }
    if (filter.ifindex && spec.ifindex != *filter.ifindex) continue;
    routes.push_back(std::move(spec));
  }
  return routes;
}

}  // namespace cni
