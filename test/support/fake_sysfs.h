#pragma once

#include <string>

// A fake sysfs PCI tree for the SR-IOV code (cni::Sysfs, the sriov plugin), laid out as the
// kernel's: each device a directory <root>/devices/pci0000:00/<address> (with a `subsystem`
// link to bus/pci), reached through <root>/bus/pci/devices/<address> links; a PF has
// sriov_numvfs, sriov_totalvfs and virtfn<N> links, a VF a physfn link; a device with a netdev
// has net/<name>/ and <root>/class/net/<name> (whose `device` leads back); a bound device has
// a `driver` link into bus/pci/drivers/<driver>. The netdevs themselves are whatever the test
// makes (veths, macvlans, netdevsim representors): the tree only names them.
namespace strait::test {

class FakeSysfs {
 public:
  // Builds the skeleton under `root`, which must exist (a TempDir); the tree is removed with it.
  explicit FakeSysfs(std::string root);
  const std::string& root() const { return root_; }

  // A PF with netdev `netdev` and no VFs yet.
  void add_pf(const std::string& address, const std::string& netdev,
              const std::string& driver = "fake_pf");
  // VF `index` of `pf`: with a netdev when `netdev` is not empty (a kernel driver), else bound
  // to `driver` only (vfio-pci for DPDK). Bumps the PF's sriov_numvfs.
  void add_vf(const std::string& pf, int index, const std::string& address,
              const std::string& netdev, const std::string& driver = "fake_vf");
  // The device's net/ entry becomes `netdev` ("" removes it: a VF rebound to vfio-pci).
  void set_netdev(const std::string& address, const std::string& netdev);
  // Rebinds the device ("" unbinds it).
  void set_driver(const std::string& address, const std::string& driver);

 private:
  std::string device_dir(const std::string& address) const;
  std::string root_;
};

}  // namespace strait::test
