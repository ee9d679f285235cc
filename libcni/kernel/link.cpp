#include "libcni/kernel/link.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/data.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>
#include <netlink/route/link/macvlan.h>
#include <sys/socket.h>

#include <algorithm>
#include <stdexcept>

#include "libcni/kernel/route.h"

namespace cni {

// ---- macvlan modes ----

namespace {
struct ModeName {
  MacvlanMode mode;
  std::string_view name;
  uint32_t kernel;
};
constexpr ModeName kModes[] = {
    {MacvlanMode::kPrivate, "private", MACVLAN_MODE_PRIVATE},
    {MacvlanMode::kVepa, "vepa", MACVLAN_MODE_VEPA},
    {MacvlanMode::kBridge, "bridge", MACVLAN_MODE_BRIDGE},
    {MacvlanMode::kPassthru, "passthru", MACVLAN_MODE_PASSTHRU},
    {MacvlanMode::kSource, "source", MACVLAN_MODE_SOURCE},
};
}  // namespace

std::optional<MacvlanMode> parse_macvlan_mode(std::string_view name) {
  for (const auto& m : kModes) {
    if (m.name == name) return m.mode;
  }
  return std::nullopt;
}

std::string_view to_string(MacvlanMode mode) {
  for (const auto& m : kModes) {
    if (m.mode == mode) return m.name;
  }
  return "unknown";
}

uint32_t to_kernel(MacvlanMode mode) {
  for (const auto& m : kModes) {
    if (m.mode == mode) return m.kernel;
  }
  throw std::invalid_argument("unknown macvlan mode");
}

std::optional<MacvlanMode> macvlan_mode_from_kernel(uint32_t mode) {
  for (const auto& m : kModes) {
    if (m.kernel == mode) return m.mode;
  }
  return std::nullopt;
}

// ---- lookup ----

std::string LinkRef::str() const {
  if (!name.empty()) return "\"" + name + "\"";
  return "index " + std::to_string(index);
}

namespace {

void check_ref(const LinkRef& link) {
  if (link.index <= 0 && link.name.empty()) {
    throw std::invalid_argument("a link reference needs an index or a name");
  }
}

std::string hex_bytes(const uint8_t* bytes, size_t len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

LinkInfo to_link_info(rtnl_link* l) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(l);
  if (const char* name = rtnl_link_get_name(l)) info.name = name;
  if (const char* kind = rtnl_link_get_type(l)) info.kind = kind;
  if (nl_addr* addr = rtnl_link_get_addr(l); addr && nl_addr_get_len(addr) > 0) {
    info.mac = format_hwaddr(static_cast<const uint8_t*>(nl_addr_get_binary_addr(addr)),
                             nl_addr_get_len(addr));
  }
  info.mtu = static_cast<int>(rtnl_link_get_mtu(l));
  info.flags = rtnl_link_get_flags(l);
  info.up = (info.flags & IFF_UP) != 0;
  info.lower_up = (info.flags & IFF_LOWER_UP) != 0;
  info.oper_state = rtnl_link_get_operstate(l);
  info.link_index = rtnl_link_get_link(l);
  if (int32_t nsid = 0; rtnl_link_get_link_netnsid(l, &nsid) == 0) info.link_netnsid = nsid;
  info.master_index = rtnl_link_get_master(l);
  info.txqlen = rtnl_link_get_txqlen(l);
  if (const char* alias = rtnl_link_get_ifalias(l)) info.alias = alias;
  if (info.kind == "macvlan" && rtnl_link_is_macvlan(l)) {
    info.macvlan_mode = macvlan_mode_from_kernel(rtnl_link_macvlan_get_mode(l));
  }
  if (const char* port = rtnl_link_get_phys_port_name(l)) info.phys_port_name = port;
  if (nl_data* id = rtnl_link_get_phys_switch_id(l); id && nl_data_get_size(id) > 0) {
    info.phys_switch_id =
        hex_bytes(static_cast<const uint8_t*>(nl_data_get(id)), nl_data_get_size(id));
  }
  return info;
}

}  // namespace

RtnlLinkPtr find_rtnl_link(NlSocket& sock, const LinkRef& link) {
  check_ref(link);
  rtnl_link* raw = nullptr;
  const int rc = sock.call([&](nl_sock* s) {
    return rtnl_link_get_kernel(s, link.index > 0 ? link.index : 0,
                                link.index > 0 ? nullptr : link.name.c_str(), &raw);
  });
  RtnlLinkPtr obj(raw);
  // The kernel answers ENODEV; libnl turns it into NLE_NODEV (older: NLE_OBJ_NOTFOUND).
  if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND) return nullptr;
  if (rc < 0) throw sock.error("failed to find link " + link.str(), rc);
  return obj;
}

std::optional<LinkInfo> find_link(NlSocket& sock, const LinkRef& link) {
  RtnlLinkPtr obj = find_rtnl_link(sock, link);
  if (!obj) return std::nullopt;
  return to_link_info(obj.get());
}

LinkInfo get_link(NlSocket& sock, const LinkRef& link) {
  auto info = find_link(sock, link);
  if (!info) throw NetlinkError("failed to find link " + link.str(), -NLE_NODEV, ENODEV);
  return *info;
}

std::vector<LinkInfo> list_links(NlSocket& sock) {
  NlCachePtr cache = sock.dump("failed to list links", [](nl_sock* s, nl_cache** c) {
    return rtnl_link_alloc_cache(s, AF_UNSPEC, c);
  });
  std::vector<LinkInfo> links;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    links.push_back(to_link_info(reinterpret_cast<rtnl_link*>(o)));
  }
  std::sort(links.begin(), links.end(),
            [](const LinkInfo& a, const LinkInfo& b) { return a.index < b.index; });
  return links;
}

int resolve_link_index(NlSocket& sock, const LinkRef& link) {
  check_ref(link);
  if (link.index > 0) return link.index;
  return get_link(sock, link).index;
}

std::optional<LinkInfo> default_route_link(NlSocket& sock, int family) {
  std::optional<RouteSpec> best;
  for (const RouteSpec& r : list_routes(sock, family, RouteFilter{})) {
    if (r.dst.prefix != 0 || r.type != RouteType::kUnicast || r.ifindex <= 0) continue;
    if (!best || r.priority.value_or(0) < best->priority.value_or(0)) best = r;
  }
  if (!best) return std::nullopt;
  return find_link(sock, best->ifindex);
}

// ---- creation ----

namespace {

void put_mac(NlMessage& msg, int attr, const MacAddress& mac) {
  msg.put(attr, mac.data(), mac.bytes().size());
}

void put_fd(NlMessage& msg, int attr, int fd) { msg.put_u32(attr, static_cast<uint32_t>(fd)); }

}  // namespace

void create_link(NlSocket& sock, const LinkAttrs& attrs, const LinkKind& kind) {
  NlMessage msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (attrs.up) {
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
  }
  msg.put_header(ifi);
  msg.put_string(IFLA_IFNAME, attrs.name);
  if (attrs.link_index > 0) msg.put_u32(IFLA_LINK, static_cast<uint32_t>(attrs.link_index));
  if (attrs.mtu > 0) msg.put_u32(IFLA_MTU, static_cast<uint32_t>(attrs.mtu));
  if (attrs.mac) put_mac(msg, IFLA_ADDRESS, *attrs.mac);
  if (attrs.txqlen) msg.put_u32(IFLA_TXQLEN, *attrs.txqlen);
  if (attrs.netns_fd) put_fd(msg, IFLA_NET_NS_FD, *attrs.netns_fd);
  msg.nest(IFLA_LINKINFO, [&] {
    msg.put_string(IFLA_INFO_KIND, kind.kind);
    if (kind.put_data) msg.nest(IFLA_INFO_DATA, [&] { kind.put_data(msg); });
  });
  sock.request(msg, "failed to create " + kind.kind + " link \"" + attrs.name + "\"");
}

void create_macvlan(NlSocket& sock, const MacvlanSpec& spec) {
  LinkAttrs attrs;
  attrs.name = spec.name;
  attrs.link_index = spec.master_index;
  attrs.mtu = spec.mtu;
  attrs.mac = spec.mac;
  attrs.txqlen = spec.txqlen;
  attrs.netns_fd = spec.netns_fd;
  LinkKind kind{"macvlan", [&spec](NlMessage& msg) {
                  msg.put_u32(IFLA_MACVLAN_MODE, to_kernel(spec.mode));
                  if (spec.bcqueuelen) msg.put_u32(IFLA_MACVLAN_BC_QUEUE_LEN, *spec.bcqueuelen);
                }};
  create_link(sock, attrs, kind);
}

void create_veth(NlSocket& sock, const VethSpec& spec) {
  LinkAttrs attrs;
  attrs.name = spec.name;
  attrs.mtu = spec.mtu;
  attrs.mac = spec.mac;
  attrs.netns_fd = spec.netns_fd;
  // The peer is described by a whole ifinfomsg + attributes inside VETH_INFO_PEER.
  LinkKind kind{"veth", [&spec](NlMessage& msg) {
                  msg.nest(VETH_INFO_PEER, [&] {
                    ifinfomsg peer{};
                    peer.ifi_family = AF_UNSPEC;
                    msg.put_header(peer);
                    msg.put_string(IFLA_IFNAME, spec.peer_name);
                    if (spec.mtu > 0) msg.put_u32(IFLA_MTU, static_cast<uint32_t>(spec.mtu));
                    if (spec.peer_mac) put_mac(msg, IFLA_ADDRESS, *spec.peer_mac);
                    if (spec.peer_netns_fd) put_fd(msg, IFLA_NET_NS_FD, *spec.peer_netns_fd);
                  });
                }};
  create_link(sock, attrs, kind);
}

void create_ifb(NlSocket& sock, const IfbSpec& spec) {
  // ifb has no IFLA_INFO_DATA: the attributes every kind takes are all it has.
  create_link(sock,
              {.name = spec.name,
               .mtu = spec.mtu,
               .txqlen = spec.txqlen,
               .netns_fd = spec.netns_fd,
               .up = spec.up},
              LinkKind{"ifb", {}});
}

// ---- settings ----

namespace {

// RTM_NEWLINK without NLM_F_CREATE changes an existing device, found by index or by name
// (what `ip link set` sends).
void change_link(NlSocket& sock, const LinkRef& link, const std::string& what, unsigned flags,
                 unsigned change, const std::function<void(NlMessage&)>& put) {
  NlMessage msg = link_message(RTM_NEWLINK, 0, link, flags, change);
  if (put) put(msg);
  sock.request(msg, what);
}

}  // namespace

NlMessage link_message(int type, int flags, const LinkRef& link, unsigned ifi_flags,
                       unsigned ifi_change) {
  check_ref(link);
  NlMessage msg(type, flags);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = link.index > 0 ? link.index : 0;
  ifi.ifi_flags = ifi_flags;
  ifi.ifi_change = ifi_change;
  msg.put_header(ifi);
  if (link.index <= 0) msg.put_string(IFLA_IFNAME, link.name);
  return msg;
}

void rename_link(NlSocket& sock, const LinkRef& link, const std::string& new_name) {
  // IFLA_IFNAME carries the new name, so the device must be found by index.
  const int index = resolve_link_index(sock, link);
  LinkRef by_index = link;
  by_index.index = index;
  change_link(sock, by_index, "failed to rename link " + link.str() + " to \"" + new_name + "\"", 0,
              0, [&](NlMessage& msg) { msg.put_string(IFLA_IFNAME, new_name); });
}

void set_link_up(NlSocket& sock, const LinkRef& link) {
  change_link(sock, link, "failed to set link " + link.str() + " up", IFF_UP, IFF_UP, nullptr);
}

void set_link_down(NlSocket& sock, const LinkRef& link) {
  change_link(sock, link, "failed to set link " + link.str() + " down", 0, IFF_UP, nullptr);
}

void set_link_mtu(NlSocket& sock, const LinkRef& link, int mtu) {
  change_link(sock, link, "failed to set MTU of link " + link.str() + " to " + std::to_string(mtu),
              0, 0, [&](NlMessage& msg) { msg.put_u32(IFLA_MTU, static_cast<uint32_t>(mtu)); });
}

void set_link_mac(NlSocket& sock, const LinkRef& link, const MacAddress& mac) {
  change_link(sock, link, "failed to set MAC of link " + link.str() + " to " + mac.str(), 0, 0,
              [&](NlMessage& msg) { put_mac(msg, IFLA_ADDRESS, mac); });
}

void set_link_alias(NlSocket& sock, const LinkRef& link, const std::string& alias) {
  change_link(sock, link, "failed to set alias of link " + link.str(), 0, 0,
              [&](NlMessage& msg) { msg.put_string(IFLA_IFALIAS, alias); });
}

void move_link_to_netns(NlSocket& sock, const LinkRef& link, int netns_fd) {
  change_link(sock, link, "failed to move link " + link.str() + " to another netns", 0, 0,
              [&](NlMessage& msg) { put_fd(msg, IFLA_NET_NS_FD, netns_fd); });
}

void delete_link(NlSocket& sock, const LinkRef& link) {
  NlMessage msg = link_message(RTM_DELLINK, 0, link);
  sock.request(msg, "failed to delete link " + link.str());
}

bool delete_link_if_exists(NlSocket& sock, const LinkRef& link) {
  try {
    delete_link(sock, link);
    return true;
  } catch (const NetlinkError& e) {
    if (e.sys_errno() == ENODEV) return false;
    throw;
  }
}

}  // namespace cni
