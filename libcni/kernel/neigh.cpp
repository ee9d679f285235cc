#include "libcni/kernel/neigh.h"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

namespace cni {

void neighbour_request(NlSocket& sock, int type, int nl_flags, const NeighRequest& req,
                       const std::string& what) {
  NlMessage msg(type, nl_flags);
  ndmsg ndm{};
  ndm.ndm_family = req.family;
  ndm.ndm_ifindex = req.ifindex;
  ndm.ndm_state = req.state;
  ndm.ndm_flags = req.flags;
  msg.put_header(ndm);
  if (req.dst) msg.put_address(NDA_DST, *req.dst);
  if (req.lladdr) msg.put(NDA_LLADDR, req.lladdr->data(), req.lladdr->bytes().size());
  sock.request(msg, what);
}

namespace {

// A neighbour dump of one family. The kernel answers an AF_UNSPEC dump with the IPv4 and IPv6
// tables only (neigh_dump_info); FDB entries need a dump of AF_BRIDGE (rtnl_fdb_dump), which
// libnl's neighbour cache makes when its first argument is the family.
NlCachePtr dump_family(NlSocket& sock, int family) {
  return sock.dump("failed to list neighbours", [family](nl_sock* s, nl_cache** out) {
    nl_cache* c = nl_cache_alloc(nl_cache_ops_lookup_safe("route/neigh"));
    if (!c) return -NLE_NOMEM;
    nl_cache_set_arg1(c, family);
    if (int err = nl_cache_refill(s, c); err < 0) {
      nl_cache_free(c);
      return err;
    }
    *out = c;
    return 0;
  });
}

void append_neighbours(const NlCachePtr& cache, std::vector<NeighRequest>& out) {
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* n = reinterpret_cast<rtnl_neigh*>(o);
    NeighRequest r;
    r.family = static_cast<uint8_t>(rtnl_neigh_get_family(n));
    r.ifindex = rtnl_neigh_get_ifindex(n);
    r.state = static_cast<uint16_t>(rtnl_neigh_get_state(n));
    r.flags = static_cast<uint8_t>(rtnl_neigh_get_flags(n));
    r.dst = from_nl_addr(rtnl_neigh_get_dst(n));
    if (nl_addr* ll = rtnl_neigh_get_lladdr(n); ll && nl_addr_get_len(ll) == 6) {
      r.lladdr = MacAddress::from_bytes(static_cast<const uint8_t*>(nl_addr_get_binary_addr(ll)));
    }
    out.push_back(std::move(r));
  }
}

}  // namespace

std::vector<NeighRequest> dump_neighbours(NlSocket& sock) {
  std::vector<NeighRequest> out;
  for (int family : {AF_UNSPEC, AF_BRIDGE}) append_neighbours(dump_family(sock, family), out);
  return out;
}

namespace {

std::string describe(const NeighSpec& n) {
  std::string s = (n.proxy ? "proxy " : "") + n.dst.str();
  if (n.lladdr) s += " lladdr " + n.lladdr->str();
  return s + " dev if" + std::to_string(n.ifindex);
}

NeighRequest request_of(const NeighSpec& n) {
  if (n.dst.family() != AF_INET && n.dst.family() != AF_INET6) {
    throw std::invalid_argument("a neighbour entry needs an IPv4 or IPv6 address");
  }
  NeighRequest r;
  r.family = static_cast<uint8_t>(n.dst.family());
  r.ifindex = n.ifindex;
  r.state = NUD_PERMANENT;
  r.flags = n.proxy ? NTF_PROXY : 0;
  r.dst = n.dst;
  if (!n.proxy) r.lladdr = n.lladdr;
  return r;
}

}  // namespace

void replace_neighbour(NlSocket& sock, const NeighSpec& neigh) {
  if (!neigh.proxy && !neigh.lladdr) {
    throw std::invalid_argument("neighbour " + neigh.dst.str() + " needs a link-layer address");
  }
  neighbour_request(sock, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, request_of(neigh),
                    "failed to add neighbour " + describe(neigh));
}

void delete_neighbour(NlSocket& sock, const NeighSpec& neigh) {
  NeighRequest r = request_of(neigh);
  r.lladdr.reset();
  neighbour_request(sock, RTM_DELNEIGH, 0, r, "failed to delete neighbour " + describe(neigh));
}

bool delete_neighbour_if_exists(NlSocket& sock, const NeighSpec& neigh) {
  try {
    delete_neighbour(sock, neigh);
    return true;
  } catch (const NetlinkError& e) {
    if (e.sys_errno() == ENOENT || e.sys_errno() == ENODEV) return false;
    throw;
  }
}

bool NeighInfo::permanent() const { return (state & NUD_PERMANENT) != 0; }

std::vector<NeighInfo> list_neighbours(NlSocket& sock, int family, std::optional<int> ifindex) {
  std::vector<NeighInfo> out;
  for (const NeighRequest& r : dump_neighbours(sock)) {
    if (r.family != AF_INET && r.family != AF_INET6) continue;
    if (family != AF_UNSPEC && r.family != family) continue;
    if (ifindex && r.ifindex != *ifindex) continue;
    if (!r.dst) continue;
    out.push_back(NeighInfo{r.ifindex, *r.dst, r.lladdr, r.state, r.flags});
  }
  return out;
}

}  // namespace cni
