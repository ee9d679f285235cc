#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/mac.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

struct nlattr;

// SR-IOV VF settings, read and written through the PF: a VF's administrative MAC, VLAN, rate
// limits, spoof checking, trust and link state are the PF driver's (ndo_get_vf_config /
// ndo_set_vf_*), addressed as "VF n of PF eth0" in RTM_GETLINK / RTM_SETLINK messages of the PF
// carrying IFLA_VFINFO_LIST. What a VF's own netdev has (its name, current MAC, MTU, netns) is
// link.h's.
//
// The messages are built and parsed here rather than with libnl's rtnl_link_vf_*: libnl 3.7
// (Debian 12) can read every field and build them into one rtnl_link_change, but one request
// per setting lets an error name the setting a driver refused (igb has no link state, many
// drivers no 802.1ad), and the parser and builder are then one pair of pure functions the
// unit tests feed each other (vf_test.cpp).
namespace cni {

// IFLA_VF_LINK_STATE_*; the names are sriov-cni's `link_state` values.
enum class VfLinkState : uint32_t { kAuto = 0, kEnable = 1, kDisable = 2 };
std::optional<VfLinkState> parse_vf_link_state(std::string_view name);  // "auto", ...
std::string_view to_string(VfLinkState state);

// VLAN protocols (ETH_P_*, host byte order) and their sriov-cni names.
inline constexpr uint16_t kVlanProto8021Q = 0x8100;
inline constexpr uint16_t kVlanProto8021AD = 0x88a8;
// "802.1Q", "802.1ad", or "0x...." for anything else.
std::string vlan_proto_name(uint16_t proto);

// One VF as its PF reports it.
struct VfInfo {
  int index = 0;
  MacAddress mac{};  // administrative MAC; 00:00:00:00:00:00 when none is set
  int vlan = 0;      // 0: no VLAN tagging
  int qos = 0;
  // 0 when the driver reports none: the kernel presets 802.1Q, but netdevsim overwrites it
  // with the 0 it keeps until a VLAN is first set.
  uint16_t vlan_proto = 0;
  // nullopt when the driver does not report it (the kernel's preset of -1 stays).
  std::optional<bool> spoofchk{};
  std::optional<bool> trust{};
  uint32_t min_tx_rate = 0;  // Mbps; 0: no limit
  uint32_t max_tx_rate = 0;
  VfLinkState link_state = VfLinkState::kAuto;
  bool operator==(const VfInfo&) const = default;
};

struct VfVlan {
  int vlan = 0;  // 0..4095 (the kernel's range; 0 removes tagging)
  int qos = 0;   // 0..7
  uint16_t proto = kVlanProto8021Q;
  bool operator==(const VfVlan&) const = default;
};

struct VfRate {
  uint32_t min_tx_rate = 0;  // Mbps
  uint32_t max_tx_rate = 0;
  bool operator==(const VfRate&) const = default;
};

// What to change of one VF; unset members are left as they are.
struct VfSettings {
  std::optional<MacAddress> mac{};
  std::optional<VfVlan> vlan{};
  std::optional<VfRate> rate{};
  std::optional<bool> spoofchk{};
  std::optional<bool> trust{};
  std::optional<VfLinkState> link_state{};
  bool empty() const { return !mac && !vlan && !rate && !spoofchk && !trust && !link_state; }
  bool operator==(const VfSettings&) const = default;
};

// The VFs of `pf` in index order (RTM_GETLINK with RTEXT_FILTER_VF); empty for a device
// without VFs. Throws NetlinkError `failed to read the VFs of PF "eth0": No such device`.
std::vector<VfInfo> list_vfs(NlSocket& sock, const LinkRef& pf);
// VF `vf` of `pf`, nullopt when the PF has no such VF.
std::optional<VfInfo> find_vf(NlSocket& sock, const LinkRef& pf, int vf);

// Applies `settings` to VF `vf` in sriov-cni's order (vlan, MAC, rate, spoofchk, trust, link
// state), one request each, stopping at the first failure: NetlinkError
// `failed to set vlan 100 qos 3 proto 802.1ad of VF 2 of PF "eth0": Protocol not supported`.
void set_vf(NlSocket& sock, const LinkRef& pf, int vf, const VfSettings& settings);

// ---- the messages (pure; for the tests) ----

// One request set_vf sends, and the text its error starts with.
struct VfRequest {
  NlMessage msg;
  std::string what;
};
// The requests of set_vf, in its order.
std::vector<VfRequest> vf_requests(const LinkRef& pf, int vf, const VfSettings& settings);

// The VFs an IFLA_VFINFO_LIST attribute holds, in index order. Malformed entries (too short,
// no IFLA_VF_MAC to name the VF) throw NetlinkError (NLE_PARSE_ERR).
std::vector<VfInfo> parse_vf_list(const nlattr* list);
// The IFLA_VFINFO_LIST of an RTM_NEWLINK message (a reply, or a request of vf_requests);
// empty when it has none.
std::vector<VfInfo> parse_link_vf_list(const nlmsghdr* hdr);

}  // namespace cni
