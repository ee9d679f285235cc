#include "libcni/kernel/addr.h"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>

#include <stdexcept>

namespace cni {

namespace {

void addr_request(NlSocket& sock, int type, int flags, int ifindex, const IpNet& addr,
                  const AddressOptions& options, const std::string& what) {
  const int family = addr.ip.family();
  if (family != AF_INET && family != AF_INET6) throw std::invalid_argument(what + ": no address");
  uint32_t ifa_flags = 0;
  if (options.nodad) ifa_flags |= IFA_F_NODAD;
  if (options.noprefixroute) ifa_flags |= IFA_F_NOPREFIXROUTE;
  NlMessage msg(type, flags);
  ifaddrmsg m{};
  m.ifa_family = static_cast<unsigned char>(family);
  m.ifa_prefixlen = static_cast<unsigned char>(addr.prefix);
  m.ifa_flags = static_cast<unsigned char>(ifa_flags & 0xff);
  m.ifa_scope = options.scope.value_or(RT_SCOPE_UNIVERSE);
  m.ifa_index = static_cast<uint32_t>(ifindex);
  msg.put_header(m);
  msg.put_address(IFA_LOCAL, addr.ip);
  msg.put_address(IFA_ADDRESS, addr.ip);
  if (type == RTM_NEWADDR) {
    if (addr.ip.is_v4() && addr.prefix < 31) msg.put_address(IFA_BROADCAST, addr.last());
    // The 8-bit ifa_flags cannot hold NOPREFIXROUTE (0x200): IFA_FLAGS carries all of them.
    if (ifa_flags != 0) msg.put_u32(IFA_FLAGS, ifa_flags);
  }
  sock.request(msg, what);
}

}  // namespace

void add_address(NlSocket& sock, const LinkRef& link, const IpNet& addr,
                 const AddressOptions& options) {
  const std::string what = "failed to add address " + addr.str() + " to link " + link.str();
  const int index = resolve_link_index(sock, link);
  addr_request(sock, RTM_NEWADDR, NLM_F_CREATE | (options.replace ? NLM_F_REPLACE : NLM_F_EXCL),
               index, addr, options, what);
}

void delete_address(NlSocket& sock, const LinkRef& link, const IpNet& addr) {
  const std::string what = "failed to delete address " + addr.str() + " from link " + link.str();
  const int index = resolve_link_index(sock, link);
  addr_request(sock, RTM_DELADDR, 0, index, addr, {}, what);
}

std::vector<AddressState> list_address_states(NlSocket& sock, const LinkRef& link, int family) {
  const int index = resolve_link_index(sock, link);
  NlCachePtr cache =
      sock.dump("failed to list addresses of link " + link.str(),
                [](nl_sock* s, nl_cache** c) { return rtnl_addr_alloc_cache(s, c); });
  std::vector<AddressState> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != index) continue;
    const int f = rtnl_addr_get_family(a);
    if (family != AF_UNSPEC && f != family) continue;
    auto ip = from_nl_addr(rtnl_addr_get_local(a));
    if (!ip) continue;
    // libnl reads IFA_FLAGS (32 bits) when the kernel sends it, else ifa_flags.
    const unsigned flags = rtnl_addr_get_flags(a);
    out.push_back({.address = IpNet{*ip, rtnl_addr_get_prefixlen(a)},
                   .tentative = (flags & IFA_F_TENTATIVE) != 0,
                   .dad_failed = (flags & IFA_F_DADFAILED) != 0,
                   .scope = static_cast<uint8_t>(rtnl_addr_get_scope(a))});
  }
  return out;
}

std::vector<IpNet> list_addresses(NlSocket& sock, const LinkRef& link, int family) {
  std::vector<IpNet> out;
  for (const AddressState& a : list_address_states(sock, link, family)) out.push_back(a.address);
  return out;
}

}  // namespace cni
