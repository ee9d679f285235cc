#include <linux/neighbour.h>
#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "libcni/core/ip.h"
#include "libcni/core/mac.h"
#include "libcni/kernel/fdb.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/neigh.h"
#include "libcni/kernel/vxlan_link.h"
#include "test/support/kernel_fixture.h"

// libcni/kernel's vxlan link kind, neighbour entries and FDB entries, each checked through
// libcni and through iproute2 in a netns made here.
using cni::IpAddress;
using cni::MacAddress;
using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

// A netns with a veth "under0" holding 192.0.2.1/24: the underlay of a vxlan device.
struct Underlay {
  KernelNs ns{"kvx"};
  int index = 0;
  Underlay() {
    ns.ns.exec("ip link add under0 type veth peer name under1");
    ns.ns.exec("ip addr add 192.0.2.1/24 dev under0");
    ns.ns.exec("ip link set under0 up");
    index = cni::get_link(ns.sock, "under0").index;
  }
};

}  // namespace

TEST_CASE("create_vxlan makes a vxlan device with its parameters", "[kernel][vxlan]") {
  Underlay u;
  const std::string name = unique_name("vx");
  const auto mac = MacAddress::parse("02:00:00:00:0c:01");
  cni::create_vxlan(u.ns.sock, {.name = name,
                                .vni = 4242,
                                .port = 4789,
                                .local = IpAddress::parse("192.0.2.1"),
                                .underlay_index = u.index,
                                .learning = false,
                                .mtu = 1400,
                                .mac = mac,
                                .up = true});
  const cni::LinkInfo link = cni::get_link(u.ns.sock, name);
  CHECK(link.kind == "vxlan");
  CHECK(link.mtu == 1400);
  CHECK(link.mac == "02:00:00:00:0c:01");
  CHECK(link.up);
  auto params = cni::find_vxlan_params(u.ns.sock, name);
  REQUIRE(params);
  CHECK(params->vni == 4242);
  CHECK(params->port == 4789);
  CHECK(params->local == IpAddress::parse("192.0.2.1"));
  CHECK(params->underlay_index == u.index);
  CHECK_FALSE(params->learning);

  const auto j = u.ns.link(name).at("linkinfo").at("info_data");
  CHECK(j.at("id") == 4242);
  CHECK(j.at("port") == 4789);
  CHECK(j.at("local") == "192.0.2.1");
  CHECK(j.at("learning") == false);

  // Not a vxlan, or missing: no parameters.
  CHECK_FALSE(cni::find_vxlan_params(u.ns.sock, "under0"));
  CHECK_FALSE(cni::find_vxlan_params(u.ns.sock, "nosuchdev0"));
  // The name is taken.
  CHECK_THROWS_AS(cni::create_vxlan(u.ns.sock, {.name = name, .vni = 1}), cni::NetlinkError);
}

TEST_CASE("permanent and proxy neighbour entries", "[kernel][neigh]") {
  Underlay u;
  const std::string name = unique_name("vx");
  cni::create_vxlan(u.ns.sock, {.name = name, .vni = 7, .underlay_index = u.index, .up = true});
  const int dev = cni::get_link(u.ns.sock, name).index;
  const auto mac = MacAddress::parse("02:00:00:00:0d:01");
  const cni::NeighSpec v4{dev, IpAddress::parse("10.244.1.0"), mac, false};
  const cni::NeighSpec v6{dev, IpAddress::parse("fd00:1::1"), mac, false};
  cni::replace_neighbour(u.ns.sock, v4);
  cni::replace_neighbour(u.ns.sock, v6);
  cni::replace_neighbour(u.ns.sock, v4);  // replacing an identical entry is fine

  auto entries = cni::list_neighbours(u.ns.sock, AF_UNSPEC, dev);
  REQUIRE(entries.size() == 2);
  for (const auto& e : entries) {
    CHECK(e.permanent());
    CHECK(e.lladdr == mac);
  }
  CHECK(cni::list_neighbours(u.ns.sock, AF_INET, dev).size() == 1);
  const std::string shown = u.ns.ns.exec("ip neigh show dev " + name);
  CHECK(shown.find("10.244.1.0 lladdr 02:00:00:00:0d:01 PERMANENT") != std::string::npos);

  // A new MAC replaces the entry.
  const auto mac2 = MacAddress::parse("02:00:00:00:0d:02");
  cni::replace_neighbour(u.ns.sock, {dev, v4.dst, mac2, false});
  entries = cni::list_neighbours(u.ns.sock, AF_INET, dev);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].lladdr == mac2);

  CHECK(cni::delete_neighbour_if_exists(u.ns.sock, v4));
  CHECK_FALSE(cni::delete_neighbour_if_exists(u.ns.sock, v4));

  // A proxy entry answers NS for fe80::1 on under0; it is not part of the dump.
  const int under = u.index;
  const cni::NeighSpec proxy{under, IpAddress::parse("fe80::1"), std::nullopt, true};
  cni::replace_neighbour(u.ns.sock, proxy);
  CHECK(u.ns.ns.exec("ip -6 neigh show proxy dev under0").find("fe80::1") != std::string::npos);
  CHECK(cni::delete_neighbour_if_exists(u.ns.sock, proxy));
  CHECK(u.ns.ns.exec("ip -6 neigh show proxy dev under0").find("fe80::1") == std::string::npos);
  CHECK_THROWS_AS(cni::replace_neighbour(u.ns.sock, {dev, v4.dst, std::nullopt, false}),
                  std::invalid_argument);
}

TEST_CASE("fdb entries of a vxlan device", "[kernel][fdb]") {
  Underlay u;
  const std::string name = unique_name("vx");
  cni::create_vxlan(u.ns.sock, {.name = name,
                                .vni = 9,
                                .local = IpAddress::parse("192.0.2.1"),
                                .underlay_index = u.index,
                                .up = true});
  const int dev = cni::get_link(u.ns.sock, name).index;
  const auto mac = MacAddress::parse("02:00:00:00:0e:01");
  cni::replace_fdb(u.ns.sock, {dev, mac, IpAddress::parse("192.0.2.2")});
  auto entries = cni::list_fdb(u.ns.sock, dev);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].mac == mac);
  CHECK(entries[0].dst == IpAddress::parse("192.0.2.2"));
  CHECK((entries[0].state & NUD_PERMANENT) != 0);
  CHECK((entries[0].flags & NTF_SELF) != 0);
  const std::string shown = u.ns.ns.exec("bridge fdb show dev " + name);
  CHECK(shown.find("02:00:00:00:0e:01 dst 192.0.2.2 self permanent") != std::string::npos);

  // Replace moves the MAC to another underlay address.
  cni::replace_fdb(u.ns.sock, {dev, mac, IpAddress::parse("192.0.2.3")});
  entries = cni::list_fdb(u.ns.sock, dev);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].dst == IpAddress::parse("192.0.2.3"));

  CHECK(cni::delete_fdb_if_exists(u.ns.sock, {dev, mac, IpAddress::parse("192.0.2.3")}));
  CHECK_FALSE(cni::delete_fdb_if_exists(u.ns.sock, {dev, mac, IpAddress::parse("192.0.2.3")}));
  CHECK(cni::list_fdb(u.ns.sock, dev).empty());
}
