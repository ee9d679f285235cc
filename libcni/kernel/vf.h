#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

// SR-IOV virtual functions (VFs) seen from their physical function (PF): which PF and VF
// index a VF's PCI address belongs to (sysfs), and the settings only the PF can make
// (IFLA_VFINFO_LIST through libnl-route's rtnl_link_vf objects). The sriov and bandwidth
// plugins use them; a VF's own netdev, once in a pod, cannot change them.
namespace cni {

inline constexpr std::string_view kSysfsRoot = "/sys";

struct VfLocation {
  std::string pci;        // the VF, "0000:03:02.1"
  std::string pf_pci;     // its PF, "0000:03:00.0"
  std::string pf_netdev;  // the PF's network device in the host netns, "ens1f0"
  int vf_index = -1;      // the PF's virtfn<N>
};

// Resolves `vf_pci` under `sysfs_root` (tests pass a fake tree): bus/pci/devices/<vf>/physfn
// names the PF, the PF's virtfn<N> link that points back at the VF gives N, and the PF's
// net/ directory its netdev. nullopt when the device is not a VF (no physfn). Throws
// std::system_error naming the path when the tree is inconsistent (a PF without the VF
// among its virtfn links, or without a netdev). sysfs shows the namespace of whoever
// mounted it, so read it in the host netns.
std::optional<VfLocation> find_vf(std::string_view vf_pci,
                                  std::string_view sysfs_root = kSysfsRoot);

// IFLA_VF_RATE of VF `vf_index` through its PF: the VF's transmit rate limited to
// max_tx_mbps (0: unlimited) and guaranteed min_tx_mbps (0: none), in Mbit/s as the
// hardware takes it. Throws NetlinkError `failed to set the rate of VF 3 of link "ens1f0" to
// 100 Mbit/s: Operation not supported` (a device without SR-IOV, or a driver without rate
// limiting).
void set_vf_rate(NlSocket& sock, const LinkRef& pf, int vf_index, uint32_t max_tx_mbps,
                 uint32_t min_tx_mbps = 0);

}  // namespace cni
