#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"
#include "test/support/sriov_world.h"

// The sriov plugin on this kernel: the sriov-fakepf fixture (the product with a fake PF, see
// test/support/sriov_world.h) exec'd in a host netns whose VF netdevs are veths named by a
// fake sysfs tree. The VF's move, rename, MAC/MTU/state and return run for real; the PF-side
// settings are recorded by the fake (the netlink path is proven in the VM, "vm: sriov").
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::PluginRun;
using strait::test::read_file;
using strait::test::sh_ok;
using strait::test::SriovNode;
using strait::test::TempNetns;
using strait::test::unique_name;

using VfState = SriovNode::VfState;

// Every VF setting sriov-cni has, all different from the fake PF's defaults.
json all_settings() {
  return {
      {"vlan", 100},        {"vlanQoS", 3},  {"vlanProto", "802.1ad"}, {"mac", "02:aa:00:00:00:01"},
      {"spoofchk", "off"},  {"trust", "on"}, {"link_state", "enable"}, {"min_tx_rate", 100},
      {"max_tx_rate", 1000}};
}

void require_ok(const PluginRun& r, const std::string& what) {
  INFO(what << ": " << r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

// The VF is back exactly as before, and nothing of the attachment is left.
void check_restored(const SriovNode& node, int vf, const VfState& before, const TempNetns& pod) {
  const VfState now = node.vf_state(vf);
  INFO("before: " << strait::test::describe(before) << "\nnow:    " << strait::test::describe(now));
  CHECK(now == before);
  CHECK(node.state_files().empty());
  CHECK(node.leases().empty());
  CHECK(pod.links() == std::set<std::string>{"lo"});
}

}  // namespace

TEST_CASE(
    "sriov: ADD sets every VF setting through the PF and hands the VF to the pod; CHECK; "
    "DEL puts everything back",
    "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svadd", 40);
  const VfState before = node.vf_state(1);  // MTU 9000, down
  const json conf = node.conf(1, all_settings());

  PluginRun add = node.run("ADD", pod.path(), cid, "net1", conf);
  require_ok(add, "ADD");
  const json res = add.json();
  CHECK(res.at("cniVersion") == "1.1.0");
  const json iface = res.at("interfaces").at(0);
  CHECK(iface.at("name") == "net1");
  CHECK(iface.at("mac") == "02:aa:00:00:00:01");
  CHECK(iface.at("mtu") == 9000);
  CHECK(iface.at("sandbox") == pod.path());
  CHECK(iface.at("pciID") == SriovNode::vf_address(1));
  CHECK(res.at("ips").at(0).at("address") == "192.0.2.10/24");
  CHECK(res.at("ips").at(0).at("interface") == 0);
  CHECK(res.at("routes").at(0).at("dst") == "198.51.100.0/24");

  // The PF-side settings, in sriov-cni's order.
  const cni::VfInfo vf = node.pf().vf(SriovNode::kPf, 1);
  CHECK(vf.vlan == 100);
  CHECK(vf.qos == 3);
  CHECK(vf.vlan_proto == cni::kVlanProto8021AD);
  CHECK(vf.mac.str() == "02:aa:00:00:00:01");
  CHECK(vf.spoofchk == false);
  CHECK(vf.trust == true);
  CHECK(vf.link_state == cni::VfLinkState::kEnable);
  CHECK(vf.min_tx_rate == 100);
  CHECK(vf.max_tx_rate == 1000);
  CHECK(node.pf().calls() ==
        std::vector<std::string>{"svpf0 vf 1 vlan 100 qos 3 proto 802.1ad",
                                 "svpf0 vf 1 mac 02:aa:00:00:00:01", "svpf0 vf 1 rate 100 1000",
                                 "svpf0 vf 1 spoofchk off", "svpf0 vf 1 trust on",
                                 "svpf0 vf 1 state enable"});

  // The netdev: gone from the host, net1 in the pod with the MAC, its MTU, the address, up.
  CHECK_FALSE(node.vf_state(1).on_host);
  CHECK(pod.links() == std::set<std::string>{"lo", "net1"});
  const json link = json::parse(pod.exec("ip -j addr show dev net1")).at(0);
  CHECK(link.at("address") == "02:aa:00:00:00:01");
  CHECK(link.at("mtu") == 9000);
  CHECK(link.at("addr_info").dump().find("192.0.2.10") != std::string::npos);
  CHECK(pod.exec("ip route show 198.51.100.0/24").find("via 192.0.2.1 dev net1") !=
        std::string::npos);
  // The record and the index.
  CHECK(node.state_files() ==
        std::set<std::string>{"pci/" + SriovNode::vf_address(1), cid + "-net1"});
  CHECK(node.leases().size() == 1);

  json check = conf;
  check["prevResult"] = res;
  require_ok(node.run("CHECK", pod.path(), cid, "net1", check), "CHECK");

  // An older cniVersion gets the result without 1.1.0's pciID and mtu.
  json del = conf;
  del["prevResult"] = res;
  require_ok(node.run("DEL", pod.path(), cid, "net1", del), "DEL");
  check_restored(node, 1, before, pod);
  require_ok(node.run("DEL", pod.path(), cid, "net1", del), "DEL again");

  {
    json old = node.conf(2);
    old["cniVersion"] = "1.0.0";
    const VfState before2 = node.vf_state(2);  // up on the host
    PluginRun r = node.run("ADD", pod.path(), cid, "net1", old);
    require_ok(r, "ADD at 1.0.0");
    CHECK_FALSE(r.json().at("interfaces").at(0).contains("pciID"));
    CHECK(r.json().at("interfaces").at(0).at("mac") == "02:5f:00:00:00:02");
    require_ok(node.run("DEL", pod.path(), cid, "net1", old), "DEL at 1.0.0");
    check_restored(node, 2, before2, pod);
  }
}

TEST_CASE("sriov: CHECK finds every change to the VF and its netdev", "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svchk", 40);
  const json conf = node.conf(0, all_settings());
  PluginRun add = node.run("ADD", pod.path(), cid, "net1", conf);
  require_ok(add, "ADD");
  json check = conf;
  check["prevResult"] = add.json();
  const auto check_fails_with = [&](const std::string& msg) {
    PluginRun r = node.run("CHECK", pod.path(), cid, "net1", check);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.json().value("msg", "").find(msg) != std::string::npos);
  };

  SECTION("a VF setting changed behind the plugin's back") {
    cni::VfInfo vf = node.pf().vf(SriovNode::kPf, 0);
    vf.vlan = 200;
    node.pf().set_vf(SriovNode::kPf, vf);
    check_fails_with(
        "VF 0 of PF \"svpf0\" (0000:af:02.0) has vlan 200 qos 3 proto 802.1ad, the "
        "config says 100 qos 3 proto 802.1ad");
    vf.vlan = 100;
    vf.trust = false;
    node.pf().set_vf(SriovNode::kPf, vf);
    check_fails_with("has trust off, the config says on");
  }
  SECTION("the netdev's MAC") {
    pod.exec("ip link set net1 address 02:aa:00:00:00:99");
    check_fails_with("interface \"net1\" has MAC 02:aa:00:00:00:99, prevResult says");
  }
  SECTION("the netdev's MTU") {
    pod.exec("ip link set net1 mtu 1400");
    check_fails_with("interface \"net1\" has MTU 1400, prevResult says 1500");
  }
  SECTION("an address") {
    pod.exec("ip addr flush dev net1");
    check_fails_with("address 192.0.2.10/24 of prevResult is not on interface \"net1\"");
  }
  SECTION("the netdev itself") {
    pod.exec("ip link set net1 name other0");
    check_fails_with("interface \"net1\" not found in netns");
  }
  SECTION("the VF's record") {
    fs::remove(node.data_dir() + "/pci/" + SriovNode::vf_address(0));
    check_fails_with("VF 0000:af:02.0 is not held by this attachment (it has no record)");
  }
  // DEL still puts it back (the record section: nothing left to restore).
  require_ok(node.run("DEL", pod.path(), cid, "net1", conf), "DEL");
}
