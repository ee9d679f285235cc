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

TEST_CASE("sriov: a failed ADD puts the VF back and leaves nothing", "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svfail", 40);
  const VfState before = node.vf_state(2);  // up on the host

  SECTION("the driver refuses a setting after others were applied") {
    node.pf().refuse({"trust"});
    PluginRun r = node.run("ADD", pod.path(), cid, "net1", node.conf(2, all_settings()));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.json().value("msg", "") ==
          "failed to set trust on of VF 2 of PF \"svpf0\": Operation not supported");
    // vlan, MAC, rate and spoofchk were set; then every setting the ADD meant to change goes
    // back to its saved value one by one (trust refused again, logged), whether or not it was
    // reached.
    const auto calls = node.pf().calls();
    CHECK(calls.size() == 9);
    CHECK(calls[4] == "svpf0 vf 2 vlan 0 qos 0 proto 802.1Q");
    CHECK(calls.back() == "svpf0 vf 2 state auto");
    CHECK(r.err.find("restoring VF settings: failed to set trust off") != std::string::npos);
  }
  SECTION("IPAM fails after the VF went into the pod") {
    json c = node.conf(2, all_settings());
    c["ipam"]["ranges"][0][0]["rangeStart"] = "192.0.2.300";
    PluginRun r = node.run("ADD", pod.path(), cid, "net1", c);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
  }
  SECTION("CNI_IFNAME is taken in the pod: nothing is touched at all") {
    pod.exec("ip link add net1 type veth peer name net1p");
    PluginRun r = node.run("ADD", pod.path(), cid, "net1", node.conf(2, all_settings()));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.json().value("code", 0) == 4);
    CHECK(node.pf().calls().empty());
    pod.exec("ip link del net1");
  }
  check_restored(node, 2, before, pod);
  // The runtime's DEL after the failed ADD changes nothing.
  require_ok(node.run("DEL", pod.path(), cid, "net1", node.conf(2)), "DEL");
  check_restored(node, 2, before, pod);
}

TEST_CASE("sriov: DPDK mode applies the VF settings only and returns the IPAM result", "[sriov]") {
  SriovNode node(4, /*dpdk_vf=*/3);
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svdpdk", 40);
  const cni::VfInfo before = node.pf().vf(SriovNode::kPf, 3);
  const json conf = node.conf(3, all_settings());
  PluginRun add = node.run("ADD", pod.path(), cid, "net1", conf);
  require_ok(add, "ADD");
  const json res = add.json();
  CHECK(res.at("interfaces").at(0).at("mac") == "02:aa:00:00:00:01");
  CHECK(res.at("interfaces").at(0).at("pciID") == SriovNode::vf_address(3));
  CHECK_FALSE(res.at("interfaces").at(0).contains("mtu"));
  CHECK(res.at("ips").at(0).at("address") == "192.0.2.10/24");
  CHECK(pod.links() == std::set<std::string>{"lo"});  // not configured anywhere
  CHECK(node.pf().vf(SriovNode::kPf, 3).vlan == 100);
  json check = conf;
  check["prevResult"] = res;
  require_ok(node.run("CHECK", pod.path(), cid, "net1", check), "CHECK");
  require_ok(node.run("DEL", pod.path(), cid, "net1", conf), "DEL");
  CHECK(node.pf().vf(SriovNode::kPf, 3) == before);
  CHECK(node.state_files().empty());
  CHECK(node.leases().empty());
}

TEST_CASE("sriov: without ipam the VF is handed over L2 only", "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svl2", 40);
  const VfState before = node.vf_state(0);
  json conf = node.conf(0);
  conf.erase("ipam");
  PluginRun add = node.run("ADD", pod.path(), cid, "net1", conf);
  require_ok(add, "ADD");
  CHECK_FALSE(add.json().contains("ips"));
  CHECK(pod.exec("ip -o link show dev net1").find("UP") != std::string::npos);
  require_ok(node.run("DEL", pod.path(), cid, "net1", conf), "DEL");
  check_restored(node, 0, before, pod);
}

TEST_CASE("sriov: one VF, one holder: a live pod's VF is refused with code 11", "[sriov]") {
  SriovNode node;
  TempNetns a{"sva"};
  TempNetns b{"svb"};
  const std::string ca = unique_name("svowna", 40);
  const std::string cb = unique_name("svownb", 40);
  require_ok(node.run("ADD", a.path(), ca, "net1", node.conf(0, all_settings())), "ADD a");
  const VfState held = node.vf_state(0);
  const auto files = node.state_files();

  PluginRun r = node.run("ADD", b.path(), cb, "net1", node.conf(0, {{"vlan", 7}}));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.json().value("code", 0) == 11);
  CHECK(r.json().value("msg", "").find("is in use by container \"" + ca + "\", ifname \"net1\"") !=
        std::string::npos);
  CHECK(node.vf_state(0) == held);
  CHECK(node.state_files() == files);
  CHECK(node.leases().size() == 1);  // b's lease was released again
  CHECK(b.links() == std::set<std::string>{"lo"});
  CHECK(a.links() == std::set<std::string>{"lo", "net1"});
  require_ok(node.run("DEL", a.path(), ca, "net1", node.conf(0)), "DEL a");
}

TEST_CASE("sriov: ADD twice without DEL fails and keeps the first attachment", "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svtwice", 40);
  const VfState before = node.vf_state(0);
  require_ok(node.run("ADD", pod.path(), cid, "net1", node.conf(0, all_settings())), "ADD");
  const VfState held = node.vf_state(0);
  PluginRun again = node.run("ADD", pod.path(), cid, "net1", node.conf(0, all_settings()));
  INFO(again.out << again.err);
  CHECK(again.exit_code == 1);
  CHECK(again.json().value("code", 0) == 4);
  CHECK(node.vf_state(0) == held);
  CHECK(pod.links() == std::set<std::string>{"lo", "net1"});
  require_ok(node.run("DEL", pod.path(), cid, "net1", node.conf(0)), "DEL");
  check_restored(node, 0, before, pod);
}

TEST_CASE(
    "sriov: a pod gone without a DEL; the next pod gets its VF back; the old pod's late "
    "DEL does not touch it (sriov-cni #219)",
    "[sriov]") {
  SriovNode node;
  const VfState before = node.vf_state(0);
  const std::string ca = unique_name("svold", 40);
  const std::string cb = unique_name("svnew", 40);
  auto old_pod = std::make_unique<TempNetns>("svo");
  const std::string old_path = old_pod->path();
  require_ok(node.run("ADD", old_path, ca, "net1", node.conf(0, all_settings())), "ADD old");
  // The old pod's netns dies without a DEL. A physical VF netdev goes back to the initial
  // netns under the name it had; a veth would die with the netns, so the test moves it
  // there as the kernel would, and the sysfs tree names it as the kernel's would.
  old_pod->exec("ip link set net1 netns " + node.host.name());
  old_pod.reset();
  node.tree().set_netdev(SriovNode::vf_address(0), "net1");

  TempNetns new_pod{"svn"};
  PluginRun add = node.run("ADD", new_pod.path(), cb, "net1", node.conf(0, {{"vlan", 42}}));
  require_ok(add, "ADD new");
  node.tree().set_netdev(SriovNode::vf_address(0), SriovNode::vf_netdev(0));
  // The old pod's settings were put back first: only vlan is the new pod's.
  const cni::VfInfo vf = node.pf().vf(SriovNode::kPf, 0);
  CHECK(vf.vlan == 42);
  CHECK(vf.qos == 0);
  CHECK(vf.mac == before.vf.mac);
  CHECK(vf.trust == before.vf.trust);
  CHECK(vf.spoofchk == before.vf.spoofchk);
  CHECK(vf.link_state == before.vf.link_state);
  CHECK(add.json().at("interfaces").at(0).at("mac") == before.mac);  // its own MAC again
  const VfState held = node.vf_state(0);
  const auto files = node.state_files();

  // The old pod's DEL comes late, with and without its netns path, twice.
  for (const std::string& netns : {old_path, std::string()}) {
    require_ok(node.run("DEL", netns, ca, "net1", node.conf(0, all_settings())), "late DEL");
    CHECK(node.vf_state(0) == held);
    CHECK(node.state_files() == files);
    CHECK(new_pod.links() == std::set<std::string>{"lo", "net1"});
  }
  require_ok(node.run("DEL", new_pod.path(), cb, "net1", node.conf(0)), "DEL new");
  check_restored(node, 0, before, new_pod);
}

TEST_CASE("sriov: DEL with an empty CNI_NETNS takes the VF out of the netns its record names",
          "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svnons", 40);
  const VfState before = node.vf_state(1);
  require_ok(node.run("ADD", pod.path(), cid, "net1", node.conf(1, all_settings())), "ADD");
  require_ok(node.run("DEL", "", cid, "net1", node.conf(1, all_settings())), "DEL");
  check_restored(node, 1, before, pod);
}

TEST_CASE("sriov: DEL after the state was removed (sriov-cni #178)", "[sriov]") {
  SriovNode node;
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svgone", 40);
  const VfState before = node.vf_state(0);
  require_ok(node.run("ADD", pod.path(), cid, "net1", node.conf(0, all_settings())), "ADD");

  SECTION("the attachment's index is gone: the record, found by its owner, restores all") {
    fs::remove(node.data_dir() + "/" + cid + "-net1");
    require_ok(node.run("DEL", pod.path(), cid, "net1", node.conf(0)), "DEL");
    check_restored(node, 0, before, pod);
  }
  SECTION("all of it is gone (state on a tmpfs, a reboot): DEL succeeds and releases the lease") {
    fs::remove_all(node.data_dir());
    require_ok(node.run("DEL", pod.path(), cid, "net1", node.conf(0)), "DEL");
    require_ok(node.run("DEL", pod.path(), cid, "net1", node.conf(0)), "DEL again");
    CHECK(node.leases().empty());
    // Nothing is known about the VF's state before the ADD, so nothing is put back: the
    // netdev stays in the pod (and, being physical on a real node, returns to the host when
    // the netns dies), the VF settings stay the pod's. README says so.
    CHECK(pod.links() == std::set<std::string>{"lo", "net1"});
    CHECK(node.pf().vf(SriovNode::kPf, 0).vlan == 100);
  }
}

TEST_CASE("sriov: GC returns the VFs of attachments not in the valid list", "[sriov]") {
  SriovNode node;
  TempNetns pa{"sva"};
  TempNetns pb{"svb"};
  const std::string ca = unique_name("svgca", 40);
  const std::string cb = unique_name("svgcb", 40);
  const VfState before_a = node.vf_state(0);
  const VfState before_b = node.vf_state(1);
  require_ok(node.run("ADD", pa.path(), ca, "net1", node.conf(0, all_settings())), "ADD a");
  require_ok(node.run("ADD", pb.path(), cb, "net1", node.conf(1, all_settings())), "ADD b");
  const VfState held_b = node.vf_state(1);
  const auto gc = [&](const json& valid) {
    json c = node.conf(0);
    if (!valid.is_null()) c["cni.dev/valid-attachments"] = valid;
    return node.run("GC", "", "", "", c);
  };

  // No list at all is not an empty list: nothing is collected.
  require_ok(gc(nullptr), "GC without a list");
  CHECK(node.state_files().size() == 4);

  require_ok(gc(json::array({{{"containerID", cb}, {"ifname", "net1"}}})), "GC keeping b");
  CHECK(node.vf_state(0) == before_a);
  CHECK(pa.links() == std::set<std::string>{"lo"});
  CHECK(node.vf_state(1) == held_b);
  CHECK(node.state_files() ==
        std::set<std::string>{"pci/" + SriovNode::vf_address(1), cb + "-net1"});
  CHECK(node.leases().size() == 1);

  require_ok(gc(json::array()), "GC keeping nothing");
  check_restored(node, 1, before_b, pb);
}

TEST_CASE("sriov: STATUS checks the PF of a config that names its VF", "[sriov]") {
  SriovNode node;
  require_ok(node.run("STATUS", "", "", "", node.conf(0)), "STATUS");
  json no_device = node.conf(0);
  no_device.erase("deviceID");
  require_ok(node.run("STATUS", "", "", "", no_device), "STATUS without deviceID");
  sh_ok("ip -n " + node.host.name() + " link del " + SriovNode::kPf);
  PluginRun r = node.run("STATUS", "", "", "", node.conf(0));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.json().value("code", 0) == 50);
  CHECK(r.json().value("msg", "").find("PF netdev \"svpf0\" is not in the host netns") !=
        std::string::npos);
  require_ok(node.run("STATUS", "", "", "", no_device), "STATUS without deviceID, PF gone");
}

TEST_CASE("sriov: sriov-cni's allocation records (the netns path alone)", "[sriov]") {
  SriovNode node;
  TempNetns holder{"svh"};
  TempNetns pod{"svp"};
  const std::string cid = unique_name("svlegacy", 40);
  const std::string record = node.data_dir() + "/pci/" + SriovNode::vf_address(0);
  fs::create_directories(node.data_dir() + "/pci");
  std::ofstream(record) << holder.path();
  PluginRun busy = node.run("ADD", pod.path(), cid, "net1", node.conf(0));
  INFO(busy.out << busy.err);
  CHECK(busy.json().value("code", 0) == 11);
  CHECK(busy.json().value("msg", "").find("an unknown owner") != std::string::npos);
  // Its netns gone, the record is stale and the VF free.
  std::ofstream(record) << "/run/netns/strait-gone-" + cid;
  require_ok(node.run("ADD", pod.path(), cid, "net1", node.conf(0)), "ADD");
  require_ok(node.run("DEL", pod.path(), cid, "net1", node.conf(0)), "DEL");
  CHECK(node.state_files().empty());
}
