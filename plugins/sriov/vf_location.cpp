#include "plugins/sriov/vf_location.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "libcni/core/error.h"

namespace sriov {

namespace {

// sriov-cni's UserspaceDrivers: a VF bound to one of these has no netdev (DPDK mode).
constexpr std::array<std::string_view, 3> kUserspaceDrivers = {"vfio-pci", "uio_pci_generic",
                                                               "igb_uio"};

}  // namespace

VfLocation locate_vf(const cni::Sysfs& sys, const std::string& device_id, const std::string& key) {
  auto invalid = [&](const std::string& why) {
    return cni::Error(cni::kErrInvalidConfig,
                      "invalid config: \"" + key + "\": \"" + device_id + "\" " + why);
  };
  if (!sys.pci_device_exists(device_id)) {
    throw invalid("is no PCI device (nothing at " + sys.pci_device_path(device_id) + ")");
  }
  VfLocation loc;
  loc.device_id = device_id;
  auto pf = sys.pci_physfn(device_id);
  if (!pf) throw invalid("is not an SR-IOV VF (it has no physfn)");
  loc.pf_device = *pf;
  const auto pf_netdevs = sys.pci_netdevs(*pf);
  if (pf_netdevs.empty()) {
    throw cni::Error(cni::kErrInternal, "the PF " + *pf + " of VF " + device_id +
                                            " has no netdev in the host netns: its VF settings "
                                            "cannot be reached");
  }
  loc.pf = pf_netdevs.front();
  auto index = sys.pci_vf_index(*pf, device_id);
  if (!index) {
    throw cni::Error(cni::kErrInternal, "no virtfn link of PF " + *pf + " names VF " + device_id +
                                            " (sysfs changed?)");
  }
  loc.vf_index = *index;
  loc.driver = sys.pci_driver(device_id).value_or("");
  loc.dpdk = std::find(kUserspaceDrivers.begin(), kUserspaceDrivers.end(), loc.driver) !=
             kUserspaceDrivers.end();
  return loc;
}

std::string vf_netdev(const cni::Sysfs& sys, const std::string& device_id) {
  const auto names = sys.pci_netdevs(device_id);
  return names.empty() ? std::string() : names.front();
}

}  // namespace sriov
