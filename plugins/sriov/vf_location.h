#pragma once

#include <string>

#include "libcni/kernel/sysfs.h"

// Where a VF is, from sysfs in the host netns (sriov-cni's GetPfName, GetVfid,
// GetVFLinkNames, HasDpdkDriver): its PF and the PF's netdev, its index on the PF, and its
// driver. Its netdev is read separately (vf_netdev), after the VF's lock is held: a VF that
// another pod holds has no netdev on the host.
namespace sriov {

struct VfLocation {
  std::string device_id;  // the VF's PCI address
  std::string pf_device;  // the PF's PCI address
  std::string pf;         // the PF netdev, through which the VF's settings go
  int vf_index = 0;       // N of the PF's virtfn<N>
  std::string driver;     // "" when unbound
  bool dpdk = false;      // bound to a user-space driver (vfio-pci, uio_pci_generic, igb_uio)
};

// Throws cni::Error: kErrInvalidConfig naming `key` for an address that is no device or no VF;
// kErrInternal when the PF has no netdev or no virtfn link names the VF.
VfLocation locate_vf(const cni::Sysfs& sys, const std::string& device_id, const std::string& key);

// The VF's netdev as sysfs names it now; "" when it has none on the host.
std::string vf_netdev(const cni::Sysfs& sys, const std::string& device_id);

}  // namespace sriov
