#include "libcni/kernel/ipip_link.h"

#include <linux/if_tunnel.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>
#include <netlink/route/link/ipip.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "libcni/kernel/addr.h"

namespace cni {

namespace {

uint32_t v4_be(const IpAddress& ip, const char* what) {
  if (!ip.is_v4()) {
    throw std::invalid_argument(std::string("ipip ") + what + " must be IPv4, not " + ip.str());
  }
  uint32_t be;
  std::memcpy(&be, ip.data(), 4);
  return be;
}

std::optional<IpAddress> from_be(uint32_t be) {
  if (be == 0) return std::nullopt;
  return IpAddress::from_bytes(AF_INET, &be);
}

}  // namespace

void create_ipip(NlSocket& sock, const IpipSpec& spec) {
  // Both before the request, so an IPv6 endpoint fails without a half-built message.
  const uint32_t local = spec.local ? v4_be(*spec.local, "local") : 0;
  const uint32_t remote = spec.remote ? v4_be(*spec.remote, "remote") : 0;
  if (!spec.pmtudisc && spec.ttl != 0) {
    throw std::invalid_argument(
        "ipip link \"" + spec.name + "\": ttl " + std::to_string(spec.ttl) +
        " and no path MTU discovery are incompatible (a fixed TTL sets DF)");
  }
  LinkAttrs attrs;
  attrs.name = spec.name;
  attrs.mtu = spec.mtu;
  attrs.netns_fd = spec.netns_fd;
  LinkKind kind{"ipip", [&](NlMessage& msg) {
                  if (spec.link_index > 0) {
                    msg.put_u32(IFLA_IPTUN_LINK, static_cast<uint32_t>(spec.link_index));
                  }
                  msg.put_u32(IFLA_IPTUN_LOCAL, local);
                  msg.put_u32(IFLA_IPTUN_REMOTE, remote);
                  msg.put_u8(IFLA_IPTUN_TTL, spec.ttl);
                  msg.put_u8(IFLA_IPTUN_TOS, spec.tos);
                  msg.put_u8(IFLA_IPTUN_PMTUDISC, spec.pmtudisc ? 1 : 0);
                }};
  create_link(sock, attrs, kind);
}

std::optional<IpipInfo> find_ipip(NlSocket& sock, const LinkRef& link) {
  RtnlLinkPtr obj = find_rtnl_link(sock, link);
  // libnl parses IFLA_INFO_DATA only for kinds it knows; the accessors below insist on it.
  if (!obj || !rtnl_link_is_ipip(obj.get())) return std::nullopt;
  IpipInfo info;
  info.local = from_be(rtnl_link_ipip_get_local(obj.get()));
  info.remote = from_be(rtnl_link_ipip_get_remote(obj.get()));
  info.ttl = rtnl_link_ipip_get_ttl(obj.get());
  info.tos = rtnl_link_ipip_get_tos(obj.get());
  info.pmtudisc = rtnl_link_ipip_get_pmtudisc(obj.get()) != 0;
  info.link_index = static_cast<int>(rtnl_link_ipip_get_link(obj.get()));
  return info;
}

std::optional<LinkInfo> find_ipip_fallback(NlSocket& sock) {
  auto link = find_link(sock, std::string(kIpipFallbackName));
  if (!link || link->kind != "ipip") return std::nullopt;
  return link;
}

LinkInfo configure_ipip_fallback(NlSocket& sock, const IpipFallbackSettings& settings) {
  auto link = find_ipip_fallback(sock);
  if (!link) {
    throw NetlinkError("ipip fallback device \"" + std::string(kIpipFallbackName) +
                           "\" not found in this netns (is the ipip module loaded?)",
                       -NLE_NODEV, ENODEV);
  }
  if (settings.mtu && *settings.mtu != link->mtu) set_link_mtu(sock, link->index, *settings.mtu);
  if (!settings.addresses.empty()) {
    const std::vector<IpNet> have = list_addresses(sock, link->index, AF_INET);
    for (const IpNet& addr : settings.addresses) {
      if (std::find(have.begin(), have.end(), addr) == have.end()) {
        add_address(sock, link->index, addr);
      }
    }
  }
  if (settings.up && !link->up) set_link_up(sock, link->index);
  return get_link(sock, link->index);
}

}  // namespace cni
