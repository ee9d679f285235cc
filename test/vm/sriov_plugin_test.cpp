#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "libcni/kernel/devlink.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/representor.h"
#include "libcni/kernel/vf.h"
#include "test/support/fake_sysfs.h"
#include "test/support/harness.h"
#include "test/vm/netdevsim.h"

// The sriov plugin itself (bin/sriov, the netlink VfControl) on Debian's kernel inside the VM
// (ctest "vm: sriov": scripts/vm --modules netdevsim): the VF settings are applied by the
// kernel through a netdevsim PF and read back from it. netdevsim has no PCI addresses and no
// VF netdevs, so a fake sysfs tree (sysfsRoot) gives the VFs addresses and, in switchdev mode,
// names each VF's representor as its netdev: the move into the pod, the rename, MAC and up run
// on those. Not covered here: a VF's own netdev and its driver applying the MAC asynchronously,
// rates in switchdev mode (netdevsim leaves them to devlink rate objects), a real vfio-pci.

using nlohmann::json;
using strait::test::FakeSysfs;
using strait::test::PluginRun;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;
using strait::vm::Netdevsim;

namespace {

constexpr char kPfAddress[] = "0000:af:00.0";
std::string vf_address(int i) { return "0000:af:02." + std::to_string(i); }

// A netdevsim PF with 4 VFs, its sysfs as the plugin's sysfsRoot: in switchdev mode VF i's
// netdev is its representor; in legacy mode every VF is bound to vfio-pci (no netdev: DPDK).
class VmSriovNode {
 public:
  VmSriovNode(int id, bool switchdev) : dev_(id, 4), tree_(root_.path() + "/sys") {
    pf_index_ = cni::get_link(sock_, dev_.pf()).index;
    tree_.add_pf(kPfAddress, dev_.pf(), "netdevsim");
    if (switchdev) {
      cni::Devlink().set_eswitch_mode(dev_.devlink(), cni::EswitchMode::kSwitchdev);
      reps_ = cni::list_vf_representors(sock_, cni::get_link(sock_, pf_index_));
      REQUIRE(reps_.size() == 4);
    }
    for (int i = 0; i < 4; ++i) {
      if (switchdev) {
        tree_.add_vf(kPfAddress, i, vf_address(i), reps_.at(i).name, "netdevsim_vf");
      } else {
        tree_.add_vf(kPfAddress, i, vf_address(i), "", "vfio-pci");
      }
    }
  }

  json conf(int vf, const json& patch) const {
    json range = {{"subnet", "192.0.2.0/24"},
                  {"rangeStart", "192.0.2.10"},
                  {"rangeEnd", "192.0.2.250"},
                  {"gateway", "192.0.2.1"}};
    json c = {{"cniVersion", "1.1.0"},
              {"name", network_},
              {"type", "sriov"},
              {"deviceID", vf_address(vf)},
              {"dataDir", root_.path() + "/sriov"},
              {"sysfsRoot", root_.path() + "/sys"},
              {"ipam",
               {{"type", "host-local"},
                {"dataDir", root_.path() + "/leases"},
                {"ranges", json::array({json::array({range})})}}}};
    c.merge_patch(patch);
    return c;
  }

  PluginRun run(const std::string& verb, const std::string& netns, const std::string& cid,
                const json& conf) const {
    return strait::test::run_plugin(strait::test::bin("sriov"),
                                    strait::test::plugin_env(verb, cid, netns, "net1"),
                                    conf.dump());
  }

  // What the kernel reports of VF i, 802.1Q for the protocol 0 netdevsim starts with (the
  // kernel takes no protocol 0 back: the plugin restores it as 802.1Q, the same VLAN).
  cni::VfInfo vf(int i) {
    cni::VfInfo v = *cni::find_vf(sock_, pf_index_, i);
    if (v.vlan_proto == 0) v.vlan_proto = cni::kVlanProto8021Q;
    return v;
  }
  // VF i's representor on the host (nullopt when it is not here).
  std::optional<cni::LinkInfo> rep(int i) { return cni::find_link(sock_, reps_.at(i).name); }

  const std::string& pf() const { return dev_.pf(); }
  std::string data_dir() const { return root_.path() + "/sriov"; }

 private:
  Netdevsim dev_;
  TempDir root_{"strait-vmsriov"};
  FakeSysfs tree_;
  std::string network_ = unique_name("vmsv", 40);
  cni::NlSocket sock_;
  int pf_index_ = 0;
  std::map<int, cni::LinkInfo> reps_;
};

void require_ok(const PluginRun& r, const std::string& what) {
  INFO(what << ": " << r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

// Every VF setting but the rates, each different from netdevsim's defaults.
json settings() {
  return {
      {"vlan", 100},      {"vlanQoS", 3},  {"vlanProto", "802.1ad"}, {"mac", "02:aa:00:00:00:01"},
      {"spoofchk", "on"}, {"trust", "on"}, {"link_state", "enable"}};
}

// The kernel's view of a VF given settings().
void check_settings(const cni::VfInfo& held) {
  INFO("VF " << held.index);
  CHECK(held.mac.str() == "02:aa:00:00:00:01");
  CHECK(held.vlan == 100);
  CHECK(held.qos == 3);
  CHECK(held.vlan_proto == cni::kVlanProto8021AD);
  CHECK(held.spoofchk == true);
  CHECK(held.trust == true);
  CHECK(held.link_state == cni::VfLinkState::kEnable);
}

bool same_link(const cni::LinkInfo& a, const cni::LinkInfo& b) {
  return a.index == b.index && a.name == b.name && a.mac == b.mac && a.mtu == b.mtu && a.up == b.up;
}

}  // namespace

TEST_CASE("vm sriov: ADD/CHECK/DEL on a netdevsim VF whose representor stands in for its netdev",
          "[sriov]") {
  VmSriovNode node(31, /*switchdev=*/true);
  TempNetns pod{"vsp"};
  const std::string cid = unique_name("vmsvadd", 40);
  const cni::VfInfo before = node.vf(1);
  const cni::VfInfo other = node.vf(0);
  const cni::LinkInfo rep_before = *node.rep(1);
  const json conf = node.conf(1, settings());

  PluginRun add = node.run("ADD", pod.path(), cid, conf);
  require_ok(add, "ADD");
  const json res = add.json();
  const json iface = res.at("interfaces").at(0);
  CHECK(iface.at("name") == "net1");
  CHECK(iface.at("mac") == "02:aa:00:00:00:01");
  CHECK(iface.at("sandbox") == pod.path());
  CHECK(iface.at("pciID") == vf_address(1));
  CHECK(res.at("ips").at(0).at("address") == "192.0.2.10/24");

  // What the kernel holds now, read back through the PF.
  check_settings(node.vf(1));
  CHECK(node.vf(0) == other);
  // The representor is in the pod as net1, with the MAC, up, and the address.
  CHECK_FALSE(node.rep(1).has_value());
  const std::string in_pod = pod.exec("ip -o addr show dev net1");
  CHECK(in_pod.find("192.0.2.10/24") != std::string::npos);
  const json link = json::parse(pod.exec("ip -j -d link show dev net1")).at(0);
  CHECK(link.at("address") == "02:aa:00:00:00:01");
  CHECK(link.at("phys_port_name") == "pf0vf1");

  json check = conf;
  check["prevResult"] = res;
  require_ok(node.run("CHECK", pod.path(), cid, check), "CHECK");
  // CHECK reads the kernel: a VLAN changed behind the plugin's back fails it.
  strait::test::sh_ok("ip link set " + node.pf() + " vf 1 vlan 7 qos 3 proto 802.1ad");
  PluginRun bad = node.run("CHECK", pod.path(), cid, check);
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code != 0);
  CHECK(bad.out.find("vlan") != std::string::npos);

  require_ok(node.run("DEL", pod.path(), cid, conf), "DEL");
  CHECK(node.vf(1) == before);
  CHECK(node.vf(0) == other);
  const auto rep_after = node.rep(1);
  REQUIRE(rep_after.has_value());
  CHECK(same_link(*rep_after, rep_before));
  CHECK(pod.links() == std::set<std::string>{"lo"});
  // DEL again: nothing left, success.
  require_ok(node.run("DEL", pod.path(), cid, conf), "DEL again");
  CHECK(node.vf(1) == before);
}

TEST_CASE("vm sriov: a setting the kernel refuses fails the ADD and every VF setting is restored",
          "[sriov]") {
  // netdevsim refuses VF rates in switchdev mode (EOPNOTSUPP) after vlan and MAC were applied.
  VmSriovNode node(32, /*switchdev=*/true);
  TempNetns pod{"vsp"};
  const std::string cid = unique_name("vmsvfail", 40);
  const cni::VfInfo before = node.vf(2);
  const cni::LinkInfo rep_before = *node.rep(2);
  json c = node.conf(2, settings());
  c["max_tx_rate"] = 1000;
  PluginRun add = node.run("ADD", pod.path(), cid, c);
  INFO(add.out << add.err);
  CHECK(add.exit_code == 1);
  CHECK(add.out.find("rate") != std::string::npos);
  CHECK(node.vf(2) == before);
  const auto rep_after = node.rep(2);
  REQUIRE(rep_after.has_value());
  CHECK(same_link(*rep_after, rep_before));
  CHECK(pod.links() == std::set<std::string>{"lo"});
  require_ok(node.run("DEL", pod.path(), cid, c), "DEL after the failed ADD");
  CHECK(node.vf(2) == before);
}

TEST_CASE(
    "vm sriov: DPDK mode (legacy eswitch, VF bound to vfio-pci) applies every setting "
    "including the rates, and DEL restores them",
    "[sriov]") {
  VmSriovNode node(33, /*switchdev=*/false);
  TempNetns pod{"vsp"};
  const std::string cid = unique_name("vmsvdpdk", 40);
  const cni::VfInfo before = node.vf(3);
  const cni::VfInfo other = node.vf(0);
  json c = node.conf(3, settings());
  c["min_tx_rate"] = 100;
  c["max_tx_rate"] = 1000;
  PluginRun add = node.run("ADD", pod.path(), cid, c);
  require_ok(add, "ADD");
  CHECK(add.json().at("interfaces").at(0).at("pciID") == vf_address(3));
  CHECK(add.json().at("ips").at(0).at("address") == "192.0.2.10/24");
  const cni::VfInfo held = node.vf(3);
  check_settings(held);
  CHECK(held.min_tx_rate == 100);
  CHECK(held.max_tx_rate == 1000);
  CHECK(node.vf(0) == other);
  json check = c;
  check["prevResult"] = add.json();
  require_ok(node.run("CHECK", pod.path(), cid, check), "CHECK");
  strait::test::sh_ok("ip link set " + node.pf() + " vf 3 max_tx_rate 500");
  PluginRun bad = node.run("CHECK", pod.path(), cid, check);
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code != 0);

  // DEL with an empty CNI_NETNS, as multus sends after the pod's netns is gone.
  require_ok(node.run("DEL", "", cid, c), "DEL");
  CHECK(node.vf(3) == before);
  CHECK(node.vf(0) == other);
}
