#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/kernel/vf.h"
#include "test/support/fake_sysfs.h"
#include "test/support/fake_vf_control.h"
#include "test/support/harness.h"

// An SR-IOV node on a kernel without SR-IOV, for the tests that exec the sriov plugin: a
// "host" netns (the plugin runs there, `ip netns exec`) whose VF netdevs are veths, a fake
// sysfs PCI tree naming them (PF 0000:af:00.0 "svpf0", VF i 0000:af:02.i "svvf<i>"), a fake PF
// keeping the VF settings (FakePfState in the tree), and the plugin's data directory and
// host-local's lease directory, all under one temporary root. So the netdev's move, rename,
// MAC/MTU and return run for real, and only the PF-side settings are a fake: the sriov-fakepf
// fixture binary is the product with that one seam replaced.
namespace strait::test {

class SriovNode {
 public:
  // VF 1 has MTU 9000 and VF 2 is up on the host, so restoring MTU and state is tested; VF
  // `dpdk_vf` (when >= 0) has no netdev and is bound to vfio-pci.
  explicit SriovNode(int vfs = 4, int dpdk_vf = -1);

  TempNetns host{"svh"};
  TempDir root{"strait-sriov"};
  std::string network = unique_name("svnet", 40);

  static constexpr const char* kPf = "svpf0";
  static constexpr const char* kPfAddress = "0000:af:00.0";
  std::string sysfs() const { return root.path() + "/sys"; }
  std::string data_dir() const { return root.path() + "/sriov"; }
  std::string lease_dir() const { return root.path() + "/leases"; }
  static std::string vf_address(int i) { return "0000:af:02." + std::to_string(i); }
  static std::string vf_netdev(int i) { return "svvf" + std::to_string(i); }

  FakeSysfs& tree() { return tree_; }
  FakePfState& pf() { return pf_; }
  const FakePfState& pf() const { return pf_; }

  // The config of an attachment of VF `vf`: sriov with host-local (192.0.2.0/24) unless
  // `patch` (a JSON merge patch) says otherwise.
  nlohmann::json conf(int vf, const nlohmann::json& patch = nlohmann::json::object()) const;

  // Runs sriov-fakepf in the host netns.
  PluginRun run(const std::string& verb, const std::string& netns, const std::string& cid,
                const std::string& ifname, const nlohmann::json& conf,
                const std::string& cni_args = "") const;

  // What DEL must put back: the VF's PF-side settings and its netdev on the host.
  struct VfState {
    cni::VfInfo vf;
    bool on_host = false;
    std::string mac;
    int mtu = 0;
    bool up = false;
    bool operator==(const VfState&) const = default;
  };
  VfState vf_state(int i) const;

  // The plugin's state files (records and indexes, relative to the data dir), without the
  // lock files, which hold nothing.
  std::set<std::string> state_files() const;
  // host-local's leases ("<ip>=<content>").
  std::set<std::string> leases() const;

 private:
  FakeSysfs tree_;
  FakePfState pf_;
};

std::string describe(const SriovNode::VfState& s);

}  // namespace strait::test
