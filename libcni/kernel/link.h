#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/mac.h"
#include "libcni/kernel/netlink.h"

// Network devices: lookup, creation and the common settings, over RTM_*LINK.
//
// Creation is one generic verb, create_link(attrs, kind): the attributes every kind shares
// (name, lower device, MTU, MAC, target netns) plus a LinkKind that names IFLA_INFO_KIND and
// writes the kind's IFLA_INFO_DATA. create_macvlan and create_veth are built on it; vxlan,
// ipip and ifb add their own XxxSpec + create_xxx the same way (a kind with many options
// gets its own file: ipip_link.h). Settings of a VF go through its PF (IFLA_VFINFO_LIST):
// vf.h's verbs take the PF's LinkRef.
//
// Every member of the spec structs has an initializer, so designated initializers may leave
// any of them out ({.name = "eth0", .mtu = 1400}) under -Wmissing-field-initializers.
namespace cni {

// IFLA_MACVLAN_MODE. The names are the macvlan plugin's `mode` values.
enum class MacvlanMode { kPrivate, kVepa, kBridge, kPassthru, kSource };
std::optional<MacvlanMode> parse_macvlan_mode(std::string_view name);  // "bridge", ...
std::string_view to_string(MacvlanMode mode);
uint32_t to_kernel(MacvlanMode mode);  // MACVLAN_MODE_*
std::optional<MacvlanMode> macvlan_mode_from_kernel(uint32_t mode);

// One device as the kernel reports it.
struct LinkInfo {
  int index = 0;
  std::string name{};
  std::string kind{};  // IFLA_INFO_KIND: "macvlan", "veth", "vxlan", ...; "" for physical/lo
  std::string mac{};   // lowercase "aa:bb:cc:dd:ee:ff"; "" when the device has none
  int mtu = 0;
  unsigned flags = 0;      // IFF_*
  bool up = false;         // IFF_UP (administratively up)
  bool lower_up = false;   // IFF_LOWER_UP (carrier)
  uint8_t oper_state = 0;  // IF_OPER_* (RFC 2863): IF_OPER_UP = 6, IF_OPER_DOWN = 2, ...
  // IFLA_LINK: the lower device of a macvlan/vlan/vxlan, the peer of a veth. With
  // link_netnsid set it lives in another namespace, so the index means nothing here.
  int link_index = 0;
  std::optional<int> link_netnsid{};
  int master_index = 0;  // IFLA_MASTER: the bridge/bond it is enslaved to
  uint32_t txqlen = 0;
  std::string alias{};                        // IFLA_IFALIAS, "" when none
  std::optional<MacvlanMode> macvlan_mode{};  // when kind == "macvlan"
  // IFLA_PHYS_PORT_NAME and IFLA_PHYS_SWITCH_ID (hex), "" when the driver has none: a
  // switchdev representor of VF n is "pf0vf<n>" on its PF's switch (representor.h).
  std::string phys_port_name{};
  std::string phys_switch_id{};
};

// Names a device by index or by name, for the verbs below. Implicit on purpose: verbs take
// `5`, `"eth0"`, or a LinkInfo (which carries both, the index is used and the name shown).
struct LinkRef {
  int index = 0;
  std::string name{};

  LinkRef(int i) : index(i) {}                                  // NOLINT
  LinkRef(const char* n) : name(n) {}                           // NOLINT
  LinkRef(std::string_view n) : name(n) {}                      // NOLINT
  LinkRef(const std::string& n) : name(n) {}                    // NOLINT
  LinkRef(const LinkInfo& l) : index(l.index), name(l.name) {}  // NOLINT

  std::string str() const;  // `"eth0"`, or `index 5` when only the index is known
};

// Lookup. find_link gives nullopt for a missing device; get_link throws NetlinkError
// `failed to find link "eth0": No such device`.
std::optional<LinkInfo> find_link(NlSocket& sock, const LinkRef& link);
// The device as libnl parsed it, for the accessors of a kind (rtnl_link_ipip_get_*); null
// for a missing device.
RtnlLinkPtr find_rtnl_link(NlSocket& sock, const LinkRef& link);
LinkInfo get_link(NlSocket& sock, const LinkRef& link);
std::vector<LinkInfo> list_links(NlSocket& sock);
// The index of `link`, asking the kernel only when the ref has just a name.
int resolve_link_index(NlSocket& sock, const LinkRef& link);

// The device of the main table's default route for `family` (AF_INET, AF_INET6) with the
// lowest metric; nullopt when there is none. The macvlan plugin's default master.
std::optional<LinkInfo> default_route_link(NlSocket& sock, int family);

// ---- creation ----

// Attributes every kind takes at creation.
struct LinkAttrs {
  std::string name{};
  int link_index = 0;  // IFLA_LINK: the lower device (macvlan master), in the socket's netns
  int mtu = 0;         // 0: the kind's default (macvlan: the master's MTU)
  std::optional<MacAddress> mac{};
  std::optional<uint32_t> txqlen{};
  // IFLA_NET_NS_FD: the device is created in the socket's netns and moved into this one in
  // the same request, so it never shows up on the host under its name.
  std::optional<int> netns_fd{};
  bool up = false;
};

// The kind-specific part of RTM_NEWLINK: IFLA_INFO_KIND and what goes in IFLA_INFO_DATA.
struct LinkKind {
  std::string kind{};
  std::function<void(NlMessage&)> put_data{};  // empty: no IFLA_INFO_DATA
};

// Creates a device (NLM_F_EXCL: an existing name is EEXIST). Throws NetlinkError
// `failed to create macvlan link "net1": File exists`.
void create_link(NlSocket& sock, const LinkAttrs& attrs, const LinkKind& kind);

struct MacvlanSpec {
  std::string name{};
  int master_index = 0;  // in the socket's netns
  MacvlanMode mode = MacvlanMode::kBridge;
  int mtu = 0;                      // 0: the master's MTU
  std::optional<MacAddress> mac{};  // passthru ignores it: the macvlan takes the master's MAC
  std::optional<uint32_t> txqlen{};
  // IFLA_MACVLAN_BC_QUEUE_LEN (Linux 5.11+): the queue of broadcast/multicast frames the
  // master hands to its macvlans. libnl 3.7 has no setter; we write the attribute.
  std::optional<uint32_t> bcqueuelen{};
  std::optional<int> netns_fd{};  // create it directly in this netns (see LinkAttrs)
};
void create_macvlan(NlSocket& sock, const MacvlanSpec& spec);

struct VethSpec {
  std::string name{};
  std::string peer_name{};
  int mtu = 0;  // both ends; 0: the default (1500)
  std::optional<MacAddress> mac{};
  std::optional<MacAddress> peer_mac{};
  std::optional<int> netns_fd{};       // where `name` goes; default: the socket's netns
  std::optional<int> peer_netns_fd{};  // where `peer_name` goes; default: the socket's netns
};
void create_veth(NlSocket& sock, const VethSpec& spec);

// An intermediate functional block: a device that only hands back what is redirected to it
// (tc mirred), so a qdisc on it can shape traffic another device received.
struct IfbSpec {
  std::string name{};
  int mtu = 0;  // 0: the default (1500)
  std::optional<uint32_t> txqlen{};
  std::optional<int> netns_fd{};
  bool up = false;
};
void create_ifb(NlSocket& sock, const IfbSpec& spec);

// ---- settings ----

// An RTM_*LINK request addressed to `link`: an ifinfomsg with its index (and `ifi_flags` /
// `ifi_change`), or IFLA_IFNAME when the ref has only a name. The verbs below and those of
// other files (vf.h) add their attributes to it.
NlMessage link_message(int type, int flags, const LinkRef& link, unsigned ifi_flags = 0,
                       unsigned ifi_change = 0);

// Each throws NetlinkError naming the link: `failed to set link "eth0" up: ...`.
void rename_link(NlSocket& sock, const LinkRef& link, const std::string& new_name);
void set_link_up(NlSocket& sock, const LinkRef& link);
void set_link_down(NlSocket& sock, const LinkRef& link);
void set_link_mtu(NlSocket& sock, const LinkRef& link, int mtu);
void set_link_mac(NlSocket& sock, const LinkRef& link, const MacAddress& mac);
// IFLA_IFALIAS (`ip link set X alias ...`, at most 255 bytes): a note the kernel keeps with
// the device, e.g. the attachment a host-side device belongs to, so GC can tell whose it is.
void set_link_alias(NlSocket& sock, const LinkRef& link, const std::string& alias);
// Moves the device into another namespace (IFLA_NET_NS_FD). A name taken there is EEXIST.
void move_link_to_netns(NlSocket& sock, const LinkRef& link, int netns_fd);

// Deleting a veth end deletes both; deleting a master deletes its macvlans.
void delete_link(NlSocket& sock, const LinkRef& link);
// false when there was no such device (DEL is idempotent).
bool delete_link_if_exists(NlSocket& sock, const LinkRef& link);

}  // namespace cni
