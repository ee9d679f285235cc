#include "libcni/kernel/vxlan_link.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>

namespace cni {

void create_vxlan(NlSocket& sock, const VxlanSpec& spec) {
  LinkAttrs attrs;
  attrs.name = spec.name;
  attrs.mtu = spec.mtu;
  attrs.mac = spec.mac;
  attrs.up = spec.up;
  LinkKind kind{"vxlan", [&spec](NlMessage& msg) {
                  msg.put_u32(IFLA_VXLAN_ID, spec.vni);
                  if (spec.underlay_index > 0) {
                    msg.put_u32(IFLA_VXLAN_LINK, static_cast<uint32_t>(spec.underlay_index));
                  }
                  if (spec.local) {
                    msg.put_address(spec.local->is_v4() ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6,
                                    *spec.local);
                  }
                  msg.put_u16(IFLA_VXLAN_PORT, htons(spec.port));  // network order
                  msg.put_u8(IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0);
                }};
  create_link(sock, attrs, kind);
}

std::optional<VxlanParams> find_vxlan_params(NlSocket& sock, const LinkRef& link) {
  RtnlLinkPtr obj = find_rtnl_link(sock, link);
  if (!obj || !rtnl_link_is_vxlan(obj.get())) return std::nullopt;
  VxlanParams p;
  uint32_t v = 0;
  if (rtnl_link_vxlan_get_id(obj.get(), &v) == 0) p.vni = v;
  // libnl hands the port back in host order.
  if (rtnl_link_vxlan_get_port(obj.get(), &v) == 0) p.port = static_cast<uint16_t>(v);
  if (rtnl_link_vxlan_get_link(obj.get(), &v) == 0) p.underlay_index = static_cast<int>(v);
  nl_addr* local = nullptr;
  if (rtnl_link_vxlan_get_local(obj.get(), &local) == 0 && local) {
    p.local = from_nl_addr(local);
    nl_addr_put(local);
  }
  p.learning = rtnl_link_vxlan_get_learning(obj.get()) > 0;
  return p;
}

}  // namespace cni
