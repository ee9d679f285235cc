#include <linux/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <string>

#include "libcni/core/mac.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/route.h"
#include "test/support/kernel_fixture.h"

using cni::MacAddress;
using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

bool has_flag(const nlohmann::json& link, const std::string& flag) {
  const auto& flags = link.at("flags");
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

}  // namespace

TEST_CASE("create_veth puts the peer in another netns", "[kernel][link]") {
  KernelNs a("va");
  KernelNs b("vb");
  const std::string name = unique_name("ve");
  const std::string peer = unique_name("vp");
  const auto mac = MacAddress::parse("02:00:00:00:0a:01");
  const auto peer_mac = MacAddress::parse("02:00:00:00:0b:01");
  cni::create_veth(a.sock, {.name = name,
                            .peer_name = peer,
                            .mtu = 1400,
                            .mac = mac,
                            .peer_mac = peer_mac,
                            .peer_netns_fd = b.fd()});

  const cni::LinkInfo la = cni::get_link(a.sock, name);
  const cni::LinkInfo lb = cni::get_link(b.sock, peer);
  CHECK(la.kind == "veth");
  CHECK(lb.kind == "veth");
  CHECK(la.mtu == 1400);
  CHECK(lb.mtu == 1400);
  CHECK(la.mac == "02:00:00:00:0a:01");
  CHECK(lb.mac == "02:00:00:00:0b:01");
  CHECK_FALSE(la.up);
  // IFLA_LINK of a veth is its peer, here in another namespace.
  CHECK(la.link_index == lb.index);
  CHECK(lb.link_index == la.index);
  CHECK(la.link_netnsid.has_value());
  CHECK_FALSE(cni::find_link(a.sock, peer).has_value());
  CHECK_FALSE(cni::find_link(b.sock, name).has_value());

  const auto ja = a.link(name);
  CHECK(ja.at("linkinfo").at("info_kind") == "veth");
  CHECK(ja.at("mtu") == 1400);
  CHECK(ja.at("address") == "02:00:00:00:0a:01");
  CHECK(ja.at("ifindex") == la.index);
  CHECK(ja.at("link_index") == lb.index);
  const auto jb = b.link(peer);
  CHECK(jb.at("linkinfo").at("info_kind") == "veth");
  CHECK(jb.at("mtu") == 1400);
  CHECK(jb.at("address") == "02:00:00:00:0b:01");

  // Deleting one end removes both.
  cni::delete_link(a.sock, name);
  CHECK_FALSE(cni::find_link(a.sock, name).has_value());
  CHECK_FALSE(cni::find_link(b.sock, peer).has_value());
  CHECK(b.ip("link show").size() == 1);  // lo only
}

TEST_CASE("create_macvlan creates the link directly in the target netns", "[kernel][link]") {
  KernelNs host("mh");
  KernelNs pod("mp");
  const std::string master = unique_name("mm");
  cni::create_veth(host.sock, {.name = master, .peer_name = master + "p", .mtu = 1450});
  const cni::LinkInfo m = cni::get_link(host.sock, master);

  for (const char* mode_name : {"bridge", "private", "vepa", "passthru", "source"}) {
    DYNAMIC_SECTION("mode " << mode_name) {
      const auto mode = *cni::parse_macvlan_mode(mode_name);
      const std::string tmp = unique_name("tmp");
      const auto mac = MacAddress::parse("02:42:c0:00:02:0a");
      cni::create_macvlan(host.sock, {.name = tmp,
                                      .master_index = m.index,
                                      .mode = mode,
                                      .mtu = 1400,
                                      .mac = mac,
                                      .txqlen = 600,
                                      .bcqueuelen = 500,
                                      .netns_fd = pod.fd()});
      // Never visible on the host under its name.
      CHECK_FALSE(cni::find_link(host.sock, tmp).has_value());

      const cni::LinkInfo l = cni::get_link(pod.sock, tmp);
      CHECK(l.kind == "macvlan");
      CHECK(l.macvlan_mode == mode);
      CHECK(l.mtu == 1400);
      // A passthru macvlan takes over its master's MAC; the kernel ignores IFLA_ADDRESS.
      const std::string want_mac = mode == cni::MacvlanMode::kPassthru ? m.mac : mac.str();
      CHECK(l.mac == want_mac);
      CHECK(l.link_index == m.index);
      CHECK(l.link_netnsid.has_value());
      CHECK(l.txqlen == 600u);

      const auto j = pod.link(tmp);
      CHECK(j.at("linkinfo").at("info_kind") == "macvlan");
      CHECK(j.at("linkinfo").at("info_data").at("mode") == mode_name);
      CHECK(j.at("linkinfo").at("info_data").at("bcqueuelen") == 500);
      CHECK(j.at("mtu") == 1400);
      CHECK(j.at("address") == want_mac);
      CHECK(j.at("link_index") == m.index);
      CHECK(j.at("txqlen") == 600);

      CHECK(cni::delete_link_if_exists(pod.sock, tmp));
      CHECK_FALSE(cni::find_link(pod.sock, tmp).has_value());
    }
  }
}

TEST_CASE("create_macvlan without MTU inherits the master's", "[kernel][link]") {
  KernelNs host("mi");
  const std::string master = unique_name("mm");
  cni::create_veth(host.sock, {.name = master, .peer_name = master + "p", .mtu = 1450});
  const int master_index = cni::get_link(host.sock, master).index;
  const std::string name = unique_name("mv");
  cni::create_macvlan(host.sock, {.name = name, .master_index = master_index});
  const cni::LinkInfo l = cni::get_link(host.sock, name);
  CHECK(l.mtu == 1450);
  CHECK(l.macvlan_mode == cni::MacvlanMode::kBridge);
  CHECK(l.link_index == master_index);
  CHECK_FALSE(l.link_netnsid.has_value());
  CHECK(host.link(name).at("link") == master);
  // An MTU above the master's is refused, with the kernel's errno.
  try {
    cni::create_macvlan(host.sock, {.name = name + "x", .master_index = master_index, .mtu = 9000});
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EINVAL);
    CHECK(std::string(e.what()).rfind(
              "failed to create macvlan link \"" + name + "x\": Invalid argument", 0) == 0);
  }
}

TEST_CASE("link settings: rename, up, down, MTU, MAC", "[kernel][link]") {
  KernelNs a("ls");
  const std::string name = unique_name("ls");
  cni::create_veth(a.sock, {.name = name, .peer_name = name + "p"});
  const int index = cni::get_link(a.sock, name).index;

  const std::string renamed = unique_name("rn");
  cni::rename_link(a.sock, name, renamed);  // by name
  CHECK_FALSE(cni::find_link(a.sock, name).has_value());
  CHECK(cni::get_link(a.sock, renamed).index == index);
  CHECK(a.link(renamed).at("ifindex") == index);

  const std::string again = unique_name("rn");
  cni::rename_link(a.sock, index, again);  // by index
  CHECK(cni::get_link(a.sock, index).name == again);

  cni::set_link_up(a.sock, again);
  CHECK(cni::get_link(a.sock, again).up);
  CHECK(has_flag(a.link(again), "UP"));
  // Its peer is up as well now: the carrier comes up.
  cni::set_link_up(a.sock, name + "p");
  CHECK(cni::get_link(a.sock, again).lower_up);

  cni::set_link_down(a.sock, index);
  CHECK_FALSE(cni::get_link(a.sock, again).up);
  CHECK_FALSE(has_flag(a.link(again), "UP"));

  cni::set_link_mtu(a.sock, again, 1280);
  CHECK(cni::get_link(a.sock, index).mtu == 1280);
  CHECK(a.link(again).at("mtu") == 1280);

  cni::set_link_mac(a.sock, index, MacAddress::parse("02:AA:BB:CC:DD:EE"));
  CHECK(cni::get_link(a.sock, index).mac == "02:aa:bb:cc:dd:ee");
  CHECK(a.link(again).at("address") == "02:aa:bb:cc:dd:ee");

  // Renaming onto a taken name names both.
  try {
    cni::rename_link(a.sock, again, "lo");
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EEXIST);
    CHECK(std::string(e.what()).rfind(
              "failed to rename link \"" + again + "\" to \"lo\": File exists", 0) == 0);
  }
  try {
    cni::set_link_mtu(a.sock, again, 10);
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EINVAL);
    CHECK(std::string(e.what()).rfind(
              "failed to set MTU of link \"" + again + "\" to 10: Invalid argument", 0) == 0);
  }
}

TEST_CASE("move_link_to_netns moves a device", "[kernel][link]") {
  KernelNs a("mva");
  KernelNs b("mvb");
  const std::string name = unique_name("mv");
  cni::create_veth(a.sock, {.name = name, .peer_name = name + "p"});
  cni::move_link_to_netns(a.sock, name + "p", b.fd());
  CHECK_FALSE(cni::find_link(a.sock, name + "p").has_value());
  const cni::LinkInfo moved = cni::get_link(b.sock, name + "p");
  CHECK(moved.kind == "veth");
  CHECK(b.link(name + "p").at("ifindex") == moved.index);
  // A name taken in the target is EEXIST.
  cni::create_veth(a.sock, {.name = name + "q", .peer_name = name + "r"});
  cni::rename_link(b.sock, name + "p", name + "q");
  try {
    cni::move_link_to_netns(a.sock, name + "q", b.fd());
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EEXIST);
  }
}

TEST_CASE("delete_link, delete_link_if_exists and missing links", "[kernel][link]") {
  KernelNs a("dl");
  const std::string name = unique_name("dl");
  cni::create_veth(a.sock, {.name = name, .peer_name = name + "p"});
  // Creating it twice is EEXIST and says what.
  try {
    cni::create_veth(a.sock, {.name = name, .peer_name = name + "z"});
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EEXIST);
    CHECK(std::string(e.what()).rfind("failed to create veth link \"" + name + "\": File exists",
                                      0) == 0);
  }
  CHECK(cni::delete_link_if_exists(a.sock, name));
  CHECK_FALSE(cni::find_link(a.sock, name).has_value());
  CHECK_FALSE(cni::delete_link_if_exists(a.sock, name));
  CHECK_FALSE(cni::delete_link_if_exists(a.sock, 999999));
  CHECK(a.ip("link show").size() == 1);

  try {
    cni::delete_link(a.sock, name);
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == ENODEV);
    CHECK(std::string(e.what()) == "failed to delete link \"" + name + "\": No such device");
  }
  try {
    cni::get_link(a.sock, name);
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.code() == std::errc::no_such_device);
    CHECK(std::string(e.what()) == "failed to find link \"" + name + "\": No such device");
  }
  CHECK_THROWS_WITH(cni::get_link(a.sock, 999999),
                    "failed to find link index 999999: No such device");
  CHECK_THROWS_WITH(cni::set_link_up(a.sock, name),
                    "failed to set link \"" + name + "\" up: No such device");
}

TEST_CASE("list_links lists every device of the netns", "[kernel][link]") {
  KernelNs a("ll");
  const std::string name = unique_name("ll");
  cni::create_veth(a.sock, {.name = name, .peer_name = name + "p"});
  const auto links = cni::list_links(a.sock);
  REQUIRE(links.size() == 3);
  const auto j = a.ip("link show");
  REQUIRE(j.size() == 3);
  for (size_t i = 0; i < links.size(); ++i) {
    CHECK(links[i].index == j[i].at("ifindex"));
    CHECK(links[i].name == j[i].at("ifname"));
  }
  CHECK(links[0].name == "lo");
  CHECK(links[0].up);
  CHECK(links[0].kind == "");
}

TEST_CASE("default_route_link finds the default route's device", "[kernel][link]") {
  KernelNs a("dr");
  KernelNs peer("drp");
  const std::string up1 = unique_name("u1");
  const std::string up2 = unique_name("u2");
  cni::create_veth(a.sock, {.name = up1, .peer_name = up1 + "p", .peer_netns_fd = peer.fd()});
  cni::create_veth(a.sock, {.name = up2, .peer_name = up2 + "p", .peer_netns_fd = peer.fd()});
  cni::set_link_up(a.sock, up1);
  cni::set_link_up(a.sock, up2);
  CHECK_FALSE(cni::default_route_link(a.sock, AF_INET).has_value());

  cni::add_address(a.sock, up1, cni::IpNet::parse("192.0.2.10/24"));
  cni::add_address(a.sock, up2, cni::IpNet::parse("198.51.100.10/24"));
  a.ns.exec("ip route add default via 198.51.100.1 dev " + up2 + " metric 200");
  a.ns.exec("ip route add default via 192.0.2.1 dev " + up1 + " metric 100");
  auto l = cni::default_route_link(a.sock, AF_INET);
  REQUIRE(l.has_value());
  CHECK(l->name == up1);  // the lower metric wins
  CHECK_FALSE(cni::default_route_link(a.sock, AF_INET6).has_value());

  a.ns.exec("ip -6 addr add 2001:db8::10/64 dev " + up2 + " nodad");
  a.ns.exec("ip -6 route add default via 2001:db8::1 dev " + up2);
  auto l6 = cni::default_route_link(a.sock, AF_INET6);
  REQUIRE(l6.has_value());
  CHECK(l6->name == up2);
}
