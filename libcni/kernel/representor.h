#pragma once

#include <map>
#include <optional>
#include <string_view>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

// VF representors: with its eswitch in switchdev mode (devlink.h) a PF driver gives each VF a
// representor netdev on the host, the VF's port on the NIC's switch. The kernel names it by
// IFLA_PHYS_PORT_NAME "pf<p>vf<n>" (or "c<c>pf<p>vf<n>" on a multi-host NIC) and shares the
// PF's IFLA_PHYS_SWITCH_ID (ndo_get_port_parent_id, what `ip -d link` shows as switchid).
namespace cni {

// The parts of a VF port name: "pf0vf3" is {pf 0, vf 3}, "c1pf0vf3" adds controller 1.
struct VfPortName {
  std::optional<int> controller{};
  int pf = 0;
  int vf = 0;
  bool operator==(const VfPortName&) const = default;
};
// nullopt for any other port name ("p0" of an uplink, "pf0sf1" of a subfunction, "").
std::optional<VfPortName> parse_vf_port_name(std::string_view name);

// The representors of `pf`'s VFs in `sock`'s netns, by VF index: devices on the PF's switch
// (same non-empty phys_switch_id) whose port name names a VF; with `pf_number`, only those of
// that PCI PF ("pf<pf_number>..."), for NICs whose PFs share one switch. Empty when the PF is
// in legacy mode or its driver has no switch id.
std::map<int, LinkInfo> list_vf_representors(NlSocket& sock, const LinkInfo& pf,
                                             std::optional<int> pf_number = std::nullopt);

}  // namespace cni
