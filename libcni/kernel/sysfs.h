#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Reading sysfs below a root that is a parameter: "/sys" on a node, a fake tree in the tests
// (test/support/fake_sysfs.h), the host's /sys mounted elsewhere in a container. What SR-IOV
// needs: the PCI tree (a VF's PF and index, its netdev or driver) and the device of a netdev.
//
// sysfs is not per thread: /sys shows the network namespace of whoever mounted it, whatever
// netns the reading thread is in. A VF netdev moved into a pod netns vanishes from its
// device's net/ directory here; read it while it is on the host (design.md).
namespace cni {

// "0000:af:06.0": domain, bus, device (00-1f) and function (0-7) in hex, the form sysfs
// names PCI devices by. Lowercase or uppercase hex; sysfs itself uses lowercase.
bool is_pci_address(std::string_view s);

// The bus and name of the device behind a netdev ("pci", "0000:04:00.0"; "netdevsim",
// "netdevsim1"): a devlink handle (devlink.h).
struct BusDevice {
  std::string bus{};
  std::string device{};
  bool operator==(const BusDevice&) const = default;
};

class Sysfs {
 public:
  explicit Sysfs(std::string root = "/sys") : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  // <root>/bus/pci/devices/<address>
  std::string pci_device_path(const std::string& address) const;
  bool pci_device_exists(const std::string& address) const;
  // The PF of a VF (where its `physfn` link points); nullopt when the device is no VF.
  std::optional<std::string> pci_physfn(const std::string& vf) const;
  // A PF's VFs by index (its virtfn<N> links).
  std::map<int, std::string> pci_virtfns(const std::string& pf) const;
  // The N of the virtfn<N> of `pf` that points at `vf`.
  std::optional<int> pci_vf_index(const std::string& pf, const std::string& vf) const;
  // The netdevs of a device (<device>/net/*), sorted; empty when it has none here (bound to
  // vfio-pci, or moved into another netns).
  std::vector<std::string> pci_netdevs(const std::string& address) const;
  // The driver bound to a device (where its `driver` link points); nullopt when unbound.
  std::optional<std::string> pci_driver(const std::string& address) const;
  // sriov_numvfs of a PF; nullopt when it has no such file (not SR-IOV capable).
  std::optional<int> pci_sriov_numvfs(const std::string& pf) const;

  // The device of a netdev of the netns sysfs shows (class/net/<ifname>/device and its
  // subsystem); nullopt for a virtual device (veth, lo) or an unknown name.
  std::optional<BusDevice> netdev_device(const std::string& ifname) const;

 private:
  std::string root_;
};

}  // namespace cni
