#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/devlink.h"
#include "libcni/kernel/ipip_link.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/representor.h"
#include "libcni/kernel/sysfs.h"
#include "libcni/kernel/vf.h"
#include "test/support/kernel_fixture.h"
#include "test/vm/netdevsim.h"

// The ground the ipip and sriov plugins stand on, proven on Debian's kernel inside the VM
// (ctest "vm: kernel verbs": scripts/vm --modules ipip,netdevsim), through libcni's own verbs,
// each result read back through libcni and, where iproute2 shows it, through `ip -j` too.
// The VM is a fresh kernel whose root netns is ours; namespaces still get unique names.

using cni::IpAddress;
using cni::IpNet;
using cni::MacAddress;
using cni::VfInfo;
using cni::VfLinkState;
using strait::test::KernelNs;
using strait::test::TempNetns;
using strait::test::unique_name;
using strait::vm::Netdevsim;

namespace {

nlohmann::json ip_json(const std::string& args) {
  return nlohmann::json::parse(strait::test::sh_ok("ip -j " + args));
}

// VF i's settings in the test: every field differs between VFs and from the defaults.
VfInfo wanted_vf(int i) {
  static constexpr VfLinkState kStates[] = {VfLinkState::kAuto, VfLinkState::kEnable,
                                            VfLinkState::kDisable, VfLinkState::kEnable};
  VfInfo v;
  v.index = i;
  v.mac = MacAddress({0x02, 0x00, 0x00, 0x00, 0x0b, static_cast<uint8_t>(i + 1)});
  v.vlan = 100 + i;
  v.qos = i + 1;
  v.vlan_proto = i % 2 ? cni::kVlanProto8021AD : cni::kVlanProto8021Q;
  v.spoofchk = i % 2 == 0;
  v.trust = i % 2 == 1;
  v.min_tx_rate = 10 * static_cast<uint32_t>(i + 1);
  v.max_tx_rate = 1000 * static_cast<uint32_t>(i + 1);
  v.link_state = kStates[i % 4];
  return v;
}

cni::VfSettings settings_of(const VfInfo& v, bool with_rate = true) {
  cni::VfSettings s;
  s.mac = v.mac;
  s.vlan = cni::VfVlan{v.vlan, v.qos, v.vlan_proto};
  if (with_rate) s.rate = cni::VfRate{v.min_tx_rate, v.max_tx_rate};
  s.spoofchk = v.spoofchk;
  s.trust = v.trust;
  s.link_state = v.link_state;
  return s;
}

std::set<int> keys(const std::map<int, cni::LinkInfo>& m) {
  std::set<int> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

}  // namespace

TEST_CASE("ipip: create_ipip makes a tunnel whose endpoints, ttl and pmtudisc read back",
          "[kernel][ipip]") {
  KernelNs ns("ipip");
  KernelNs other("ipio");
  const std::string underlay = unique_name("ul");
  cni::create_veth(ns.sock, {.name = underlay, .peer_name = unique_name("up")});
  const int underlay_index = cni::get_link(ns.sock, underlay).index;

  const std::string tun = unique_name("tun");
  cni::create_ipip(ns.sock, {.name = tun,
                             .local = IpAddress::parse("192.0.2.1"),
                             .remote = IpAddress::parse("192.0.2.2"),
                             .ttl = 64,
                             .tos = 0,
                             .pmtudisc = true,
                             .link_index = underlay_index,
                             .mtu = 1400});
  const cni::LinkInfo link = cni::get_link(ns.sock, tun);
  CHECK(link.kind == "ipip");
  CHECK(link.mtu == 1400);
  CHECK(cni::find_ipip(ns.sock, tun) == cni::IpipInfo{IpAddress::parse("192.0.2.1"),
                                                      IpAddress::parse("192.0.2.2"), 64, 0, true,
                                                      underlay_index});
  const auto j = ns.link(tun).at("linkinfo").at("info_data");
  CHECK(j.at("local") == "192.0.2.1");
  CHECK(j.at("remote") == "192.0.2.2");
  CHECK(j.at("ttl") == 64);
  CHECK(j.at("pmtudisc") == true);

  // A tunnel to any remote (routes name the next hop), without path MTU discovery, made
  // directly in another netns.
  const std::string any = unique_name("tna");
  cni::create_ipip(ns.sock, {.name = any,
                             .local = IpAddress::parse("192.0.2.1"),
                             .ttl = 0,
                             .pmtudisc = false,
                             .netns_fd = other.fd()});
  CHECK_FALSE(cni::find_link(ns.sock, any).has_value());
  CHECK(cni::find_ipip(other.sock, any) ==
        cni::IpipInfo{IpAddress::parse("192.0.2.1"), std::nullopt, 0, 0, false, 0});
  CHECK(other.link(any).at("linkinfo").at("info_data").at("pmtudisc") == false);
  // Neither endpoint nor underlay: those are tunl0's keys, so the kernel refuses it.
  CHECK_THROWS_WITH(cni::create_ipip(other.sock, {.name = unique_name("tnz")}),
                    Catch::Contains("File exists"));

  // Not an ipip device, or none.
  CHECK(cni::find_ipip(ns.sock, underlay) == std::nullopt);
  CHECK(cni::find_ipip(ns.sock, "nosuch0") == std::nullopt);
  // A second device of the same endpoints is refused (the kernel matches tunnels by them).
  CHECK_THROWS_WITH(cni::create_ipip(ns.sock, {.name = unique_name("dup"),
                                               .local = IpAddress::parse("192.0.2.1"),
                                               .remote = IpAddress::parse("192.0.2.2"),
                                               .ttl = 64,
                                               .link_index = underlay_index}),
                    Catch::Contains("File exists"));
}

TEST_CASE("ipip: every netns has tunl0, which configure_ipip_fallback sets up", "[kernel][ipip]") {
  KernelNs ns("tunl");
  auto fb = cni::find_ipip_fallback(ns.sock);
  REQUIRE(fb.has_value());
  CHECK(fb->name == "tunl0");
  CHECK(fb->mtu == 1480);  // 1500 - 20 without an underlay
  CHECK_FALSE(fb->up);
  const auto fb_info = cni::find_ipip(ns.sock, "tunl0");
  REQUIRE(fb_info.has_value());
  CHECK(fb_info->local == std::nullopt);
  CHECK(fb_info->remote == std::nullopt);
  CHECK(fb_info->link_index == 0);
  INFO("tunl0: ttl " << int(fb_info->ttl) << " tos " << int(fb_info->tos) << " pmtudisc "
                     << fb_info->pmtudisc);
  CHECK(fb_info->ttl == 0);

  const IpNet addr = IpNet::parse("10.244.1.0/32");
  const cni::LinkInfo set =
      cni::configure_ipip_fallback(ns.sock, {.mtu = 1440, .addresses = {addr}, .up = true});
  CHECK(set.index == fb->index);
  CHECK(set.mtu == 1440);
  CHECK(set.up);
  CHECK(cni::list_addresses(ns.sock, "tunl0", AF_INET) == std::vector<IpNet>{addr});
  // Again, as every ADD of the ipip plugin does: no EEXIST, nothing doubled.
  CHECK(cni::configure_ipip_fallback(ns.sock, {.mtu = 1440, .addresses = {addr}}).mtu == 1440);
  CHECK(cni::list_addresses(ns.sock, "tunl0", AF_INET) == std::vector<IpNet>{addr});
  const auto j = ns.link("tunl0");
  CHECK(j.at("mtu") == 1440);
  CHECK(std::find(j.at("flags").begin(), j.at("flags").end(), "UP") != j.at("flags").end());
}

TEST_CASE("netdevsim: every VF setting sriov uses is set through the PF and reads back",
          "[kernel][vf]") {
  Netdevsim dev(11, 4);
  cni::NlSocket sock;
  const std::string& pf = dev.pf();

  const std::vector<VfInfo> initial = cni::list_vfs(sock, pf);
  REQUIRE(initial.size() == 4);
  for (int i = 0; i < 4; ++i) {
    INFO("VF " << i);
    CHECK(initial[i].index == i);
    CHECK(initial[i].mac.is_zero());
    CHECK(initial[i].vlan == 0);
    CHECK(initial[i].spoofchk == false);
    CHECK(initial[i].trust == false);
    CHECK(initial[i].link_state == VfLinkState::kAuto);
  }

  for (int i = 0; i < 4; ++i) cni::set_vf(sock, pf, i, settings_of(wanted_vf(i)));
  const std::vector<VfInfo> now = cni::list_vfs(sock, pf);
  REQUIRE(now.size() == 4);
  for (int i = 0; i < 4; ++i) {
    INFO("VF " << i);
    CHECK(now[i] == wanted_vf(i));
    CHECK(cni::find_vf(sock, pf, i) == wanted_vf(i));
  }
  CHECK(cni::find_vf(sock, pf, 4) == std::nullopt);

  // iproute2 reads the same.
  const auto vfs = ip_json("link show dev " + pf).at(0).at("vfinfo_list");
  REQUIRE(vfs.size() == 4);
  for (int i = 0; i < 4; ++i) {
    INFO("VF " << i << ": " << vfs[i].dump());
    const VfInfo w = wanted_vf(i);
    CHECK(vfs[i].at("vf") == i);
    CHECK(vfs[i].at("address") == w.mac.str());
    CHECK(vfs[i].at("vlan_list").at(0).at("vlan") == w.vlan);
    CHECK(vfs[i].at("vlan_list").at(0).at("qos") == w.qos);
    // iproute2 names the protocol only when it is not 802.1Q.
    if (w.vlan_proto == cni::kVlanProto8021AD) {
      CHECK(vfs[i].at("vlan_list").at(0).at("protocol") == "802.1ad");
    } else {
      CHECK_FALSE(vfs[i].at("vlan_list").at(0).contains("protocol"));
    }
    CHECK(vfs[i].at("rate").at("max_tx") == w.max_tx_rate);
    CHECK(vfs[i].at("rate").at("min_tx") == w.min_tx_rate);
    CHECK(vfs[i].at("spoofchk") == *w.spoofchk);
    CHECK(vfs[i].at("trust") == *w.trust);
    CHECK(vfs[i].at("link_state") == std::string(cni::to_string(w.link_state)));
  }

  // Back to what the PF reported at first (its protocol 0 set as 802.1Q, which it then
  // reports): every field restored.
  for (int i = 0; i < 4; ++i) {
    VfInfo back = initial[i];
    back.vlan_proto = cni::kVlanProto8021Q;
    cni::set_vf(sock, pf, i, settings_of(back));
    CHECK(cni::find_vf(sock, pf, i) == back);
  }

  // A value the driver refuses fails by name and changes nothing.
  CHECK_THROWS_WITH(
      cni::set_vf(sock, pf, 1, {.vlan = cni::VfVlan{4096, 0, cni::kVlanProto8021Q}}),
      "failed to set vlan 4096 qos 0 proto 802.1Q of VF 1 of PF \"" + pf + "\": Invalid argument");
  CHECK_THROWS_WITH(cni::set_vf(sock, pf, 9, {.trust = true}),
                    Catch::StartsWith("failed to set trust on of VF 9 of PF"));
  CHECK(cni::find_vf(sock, pf, 1)->vlan == 0);
}

TEST_CASE("netdevsim: switchdev mode makes VF representors that move into a netns and back",
          "[kernel][devlink]") {
  Netdevsim dev(12, 4);
  cni::NlSocket host;
  const cni::Netns host_ns = cni::Netns::current();
  const cni::LinkInfo pf = cni::get_link(host, dev.pf());

  // The devlink handle of the PF's device, from sysfs.
  const cni::Sysfs sys;
  const auto device = sys.netdev_device(dev.pf());
  REQUIRE(device.has_value());
  const cni::DevlinkHandle handle{device->bus, device->device};
  CHECK(handle == dev.devlink());

  cni::Devlink devlink;
  CHECK(devlink.eswitch_mode(handle) == cni::EswitchMode::kLegacy);
  CHECK(cni::list_vf_representors(host, pf).empty());

  devlink.set_eswitch_mode(handle, cni::EswitchMode::kSwitchdev);
  CHECK(devlink.eswitch_mode(handle) == cni::EswitchMode::kSwitchdev);
  // The PF's switch id is only reported once there is a switch.
  const cni::LinkInfo pf_sw = cni::get_link(host, pf.index);
  REQUIRE_FALSE(pf_sw.phys_switch_id.empty());
  auto reps = cni::list_vf_representors(host, pf_sw);
  CHECK(keys(reps) == std::set<int>{0, 1, 2, 3});
  for (const auto& [vf, rep] : reps) {
    INFO("VF " << vf << ": " << rep.name);
    CHECK(rep.phys_port_name == "pf0vf" + std::to_string(vf));
    CHECK(rep.phys_switch_id == pf_sw.phys_switch_id);
    CHECK(ip_json("-d link show dev " + rep.name).at(0).at("phys_port_name") == rep.phys_port_name);
  }
  CHECK(cni::list_vf_representors(host, pf_sw, 0).size() == 4);
  CHECK(cni::list_vf_representors(host, pf_sw, 1).empty());

  // VF 2's representor into a pod netns, renamed there, and back under its name.
  const cni::LinkInfo rep = reps.at(2);
  TempNetns pod_ns("rep");
  const cni::Netns pod = cni::Netns::open(pod_ns.path());
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  std::set<std::string> pod_links = pod_ns.links();  // lo and tunl0
  cni::move_link_to_netns(host, rep.index, pod.fd());
  CHECK_FALSE(cni::find_link(host, rep.name).has_value());
  CHECK(keys(cni::list_vf_representors(host, pf_sw)) == std::set<int>{0, 1, 3});
  cni::rename_link(pod_sock, rep.name, "net1");
  const cni::LinkInfo in_pod = cni::get_link(pod_sock, "net1");
  CHECK(in_pod.phys_port_name == "pf0vf2");
  CHECK(in_pod.mac == rep.mac);
  std::set<std::string> with_rep = pod_links;
  with_rep.insert("net1");
  CHECK(pod_ns.links() == with_rep);
  cni::rename_link(pod_sock, in_pod.index, rep.name);
  cni::move_link_to_netns(pod_sock, rep.name, host_ns.fd());
  CHECK(pod_ns.links() == pod_links);
  const cni::LinkInfo back = cni::get_link(host, rep.name);
  CHECK(back.phys_port_name == "pf0vf2");
  CHECK(back.mac == rep.mac);
  CHECK(keys(cni::list_vf_representors(host, pf_sw)) == std::set<int>{0, 1, 2, 3});

  // VF settings through the PF in switchdev mode: all but the rates, which netdevsim leaves
  // to devlink rate objects there ("Not supported in switchdev mode").
  const VfInfo w = wanted_vf(1);
  cni::set_vf(host, pf.index, 1, settings_of(w, /*with_rate=*/false));
  VfInfo got = *cni::find_vf(host, pf.index, 1);
  CHECK(got.mac == w.mac);
  CHECK(got.vlan == w.vlan);
  CHECK(got.qos == w.qos);
  CHECK(got.vlan_proto == w.vlan_proto);
  CHECK(got.spoofchk == w.spoofchk);
  CHECK(got.trust == w.trust);
  CHECK(got.link_state == w.link_state);
  try {
    cni::set_vf(host, pf.index, 1, {.rate = cni::VfRate{10, 1000}});
    FAIL("netdevsim took a VF rate in switchdev mode");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EOPNOTSUPP);
  }

  devlink.set_eswitch_mode(handle, cni::EswitchMode::kLegacy);
  CHECK(devlink.eswitch_mode(handle) == cni::EswitchMode::kLegacy);
  CHECK(cni::list_vf_representors(host, cni::get_link(host, pf.index)).empty());
}
