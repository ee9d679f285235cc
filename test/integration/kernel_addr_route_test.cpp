#include <sys/socket.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/route.h"
#include "libcni/protocol/result.h"
#include "test/support/kernel_fixture.h"

using cni::IpAddress;
using cni::IpNet;
using cni::RouteSpec;
using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

// A netns with one veth (`dev`, up, carrier up) whose peer sits in a second netns.
struct RoutedNs {
  KernelNs ns{"rt"};
  KernelNs peer{"rtp"};
  std::string dev = unique_name("rt");
  int index = 0;
  RoutedNs() {
    cni::create_veth(ns.sock, {.name = dev, .peer_name = dev + "p", .peer_netns_fd = peer.fd()});
    cni::set_link_up(ns.sock, dev);
    cni::set_link_up(peer.sock, dev + "p");
    index = cni::get_link(ns.sock, dev).index;
  }
};

bool contains(const std::vector<IpNet>& v, const std::string& text) {
  return std::find(v.begin(), v.end(), IpNet::parse(text)) != v.end();
}

std::vector<RouteSpec> routes_to(cni::NlSocket& sock, const std::string& dst,
                                 std::optional<uint32_t> table = cni::kMainTable) {
  std::vector<RouteSpec> out;
  const IpNet net = IpNet::parse(dst);
  for (auto& r : cni::list_routes(sock, net.ip.family(), {.table = table})) {
    if (r.dst == net) out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("addresses: add, list and delete IPv4 and IPv6", "[kernel][addr]") {
  RoutedNs t;
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"));
  cni::add_address(t.ns.sock, t.index, IpNet::parse("2001:db8::10/64"), {.nodad = true});

  const auto v4 = cni::list_addresses(t.ns.sock, t.dev, AF_INET);
  REQUIRE(v4.size() == 1);
  CHECK(v4[0] == IpNet::parse("192.0.2.10/24"));
  const auto v6 = cni::list_addresses(t.ns.sock, t.index, AF_INET6);
  CHECK(contains(v6, "2001:db8::10/64"));
  CHECK(std::all_of(v6.begin(), v6.end(), [](const IpNet& n) { return n.ip.is_v6(); }));
  const auto all = cni::list_addresses(t.ns.sock, t.dev);
  CHECK(all.size() == v4.size() + v6.size());

  const auto j = t.ns.ip("addr show dev " + t.dev).at(0).at("addr_info");
  bool seen4 = false, seen6 = false;
  for (const auto& a : j) {
    if (a.at("local") == "192.0.2.10") {
      seen4 = true;
      CHECK(a.at("prefixlen") == 24);
      CHECK(a.at("broadcast") == "192.0.2.255");  // as upstream's netlink library sets it
    }
    if (a.at("local") == "2001:db8::10") {
      seen6 = true;
      CHECK(a.at("prefixlen") == 64);
      CHECK(a.value("nodad", false));
      CHECK_FALSE(a.value("tentative", false));
    }
  }
  CHECK(seen4);
  CHECK(seen6);

  // The kernel adds the prefix route.
  CHECK(routes_to(t.ns.sock, "192.0.2.0/24").size() == 1);

  try {
    cni::add_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"));
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EEXIST);
    // The kernel's extended ack follows in parentheses.
    CHECK(std::string(e.what()) == "failed to add address 192.0.2.10/24 to link \"" + t.dev +
                                       "\": File exists (" + e.kernel_message() + ")");
    CHECK_FALSE(e.kernel_message().empty());
  }
  // replace accepts an existing address.
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"), {.replace = true});
  CHECK(cni::list_addresses(t.ns.sock, t.dev, AF_INET).size() == 1);

  cni::delete_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"));
  cni::delete_address(t.ns.sock, t.dev, IpNet::parse("2001:db8::10/64"));
  CHECK(cni::list_addresses(t.ns.sock, t.dev, AF_INET).empty());
  CHECK_FALSE(contains(cni::list_addresses(t.ns.sock, t.dev, AF_INET6), "2001:db8::10/64"));
  CHECK(t.ns.ip("-4 addr show dev " + t.dev).empty());

  try {
    cni::delete_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"));
    FAIL("no error");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EADDRNOTAVAIL);
    CHECK(std::string(e.what()).rfind(
              "failed to delete address 192.0.2.10/24 from link \"" + t.dev + "\"", 0) == 0);
  }
  CHECK_THROWS_WITH(cni::add_address(t.ns.sock, "nosuchdev", IpNet::parse("192.0.2.1/24")),
                    "failed to find link \"nosuchdev\": No such device");
}

TEST_CASE("addresses: noprefixroute adds no subnet route", "[kernel][addr]") {
  RoutedNs t;
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("198.51.100.5/24"), {.noprefixroute = true});
  CHECK(contains(cni::list_addresses(t.ns.sock, t.dev, AF_INET), "198.51.100.5/24"));
  CHECK(routes_to(t.ns.sock, "198.51.100.0/24").empty());
  CHECK(t.ns.ip("route show 198.51.100.0/24").empty());
  const auto a = t.ns.ip("addr show dev " + t.dev).at(0).at("addr_info").at(0);
  CHECK(a.value("noprefixroute", false));
}

TEST_CASE("address states: tentative during DAD, dadfailed when the peer has it",
          "[kernel][addr]") {
  RoutedNs t;
  // Ten probes one second apart: the address stays tentative for the whole test.
  t.ns.ns.exec("sysctl -qw net.ipv6.conf." + t.dev + ".dad_transmits=10");
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("2001:db8::10/64"));
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("2001:db8::11/64"), {.nodad = true});
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"));
  auto state_of = [&](const std::string& net) -> std::optional<cni::AddressState> {
    for (const auto& a : cni::list_address_states(t.ns.sock, t.dev)) {
      if (a.address == IpNet::parse(net)) return a;
    }
    return std::nullopt;
  };
  auto probing = state_of("2001:db8::10/64");
  REQUIRE(probing);
  CHECK(probing->tentative);
  CHECK_FALSE(probing->dad_failed);
  CHECK(probing->scope == 0);  // universe
  auto nodad = state_of("2001:db8::11/64");
  REQUIRE(nodad);
  CHECK_FALSE(nodad->tentative);
  auto v4 = state_of("192.0.2.10/24");
  REQUIRE(v4);
  CHECK_FALSE(v4->tentative);
  // iproute2 agrees. (The JSON is held in a local: a range-for over a member of a
  // temporary would read it after it is destroyed.)
  const auto shown = t.ns.ip("addr show dev " + t.dev);
  for (const auto& a : shown.at(0).at("addr_info")) {
    if (a.at("local") == "2001:db8::10") CHECK(a.value("tentative", false));
  }
  // Only the family asked for.
  for (const auto& a : cni::list_address_states(t.ns.sock, t.dev, AF_INET)) {
    CHECK(a.address.ip.is_v4());
  }

  // The peer owns 2001:db8::20 and answers the probe for it.
  cni::add_address(t.peer.sock, t.dev + "p", IpNet::parse("2001:db8::20/64"), {.nodad = true});
  t.ns.ns.exec("sysctl -qw net.ipv6.conf." + t.dev + ".dad_transmits=1");
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("2001:db8::20/64"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::optional<cni::AddressState> dup;
  while (std::chrono::steady_clock::now() < deadline) {
    dup = state_of("2001:db8::20/64");
    REQUIRE(dup);
    if (dup->dad_failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(dup->dad_failed);
  const auto shown_dup = t.ns.ip("addr show dev " + t.dev);
  for (const auto& a : shown_dup.at(0).at("addr_info")) {
    if (a.at("local") == "2001:db8::20") CHECK(a.value("dadfailed", false));
  }
}

TEST_CASE("routes: gateway, link scope, onlink, table, metric, blackhole", "[kernel][route]") {
  RoutedNs t;
  cni::add_address(t.ns.sock, t.dev, IpNet::parse("192.0.2.10/24"));

  SECTION("via a gateway") {
    cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27"),
                               .gw = IpAddress::parse("192.0.2.2"),
                               .ifindex = t.index});
    auto r = routes_to(t.ns.sock, "10.1.0.0/27");
    REQUIRE(r.size() == 1);
    CHECK(r[0].gw == IpAddress::parse("192.0.2.2"));
    CHECK(r[0].ifindex == t.index);
    CHECK(r[0].scope == cni::RouteScope::kUniverse);
    CHECK(r[0].protocol == 3);  // boot
    CHECK(r[0].type == cni::RouteType::kUnicast);
    const auto j = t.ns.ip("route show 10.1.0.0/27").at(0);
    CHECK(j.at("gateway") == "192.0.2.2");
    CHECK(j.at("dev") == t.dev);

    // Adding it again is EEXIST; replace changes the gateway in place.
    try {
      cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27"),
                                 .gw = IpAddress::parse("192.0.2.2"),
                                 .ifindex = t.index});
      FAIL("no error");
    } catch (const cni::NetlinkError& e) {
      CHECK(e.sys_errno() == EEXIST);
      CHECK(std::string(e.what()) ==
            "failed to add route 10.1.0.0/27 via 192.0.2.2 dev " + t.dev + ": File exists");
    }
    cni::replace_route(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27"),
                                   .gw = IpAddress::parse("192.0.2.3"),
                                   .ifindex = t.index});
    r = routes_to(t.ns.sock, "10.1.0.0/27");
    REQUIRE(r.size() == 1);
    CHECK(r[0].gw == IpAddress::parse("192.0.2.3"));
    REQUIRE(t.ns.ip("route show 10.1.0.0/27").size() == 1);
    CHECK(t.ns.ip("route show 10.1.0.0/27").at(0).at("gateway") == "192.0.2.3");

    // Delete with only the destination set, then again: ESRCH.
    cni::delete_route(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27")});
    CHECK(routes_to(t.ns.sock, "10.1.0.0/27").empty());
    CHECK(t.ns.ip("route show 10.1.0.0/27").empty());
    CHECK_FALSE(cni::delete_route_if_exists(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27")}));
    try {
      cni::delete_route(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27")});
      FAIL("no error");
    } catch (const cni::NetlinkError& e) {
      CHECK(e.sys_errno() == ESRCH);
      CHECK(std::string(e.what()).rfind("failed to delete route 10.1.0.0/27: No such process", 0) ==
            0);
    }
  }

  SECTION("a device route gets link scope") {
    cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.2.0.0/24"), .ifindex = t.index});
    auto r = routes_to(t.ns.sock, "10.2.0.0/24");
    REQUIRE(r.size() == 1);
    CHECK(r[0].scope == cni::RouteScope::kLink);
    CHECK_FALSE(r[0].gw.has_value());
    CHECK(t.ns.ip("route show 10.2.0.0/24").at(0).at("scope") == "link");
    // An explicit scope wins.
    cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.2.1.0/24"),
                               .ifindex = t.index,
                               .scope = cni::RouteScope::kUniverse});
    CHECK(routes_to(t.ns.sock, "10.2.1.0/24").at(0).scope == cni::RouteScope::kUniverse);
    CHECK_FALSE(t.ns.ip("route show 10.2.1.0/24").at(0).contains("scope"));
    CHECK(cni::delete_route_if_exists(t.ns.sock, {.dst = IpNet::parse("10.2.1.0/24")}));
  }

  SECTION("onlink through a gateway outside every subnet") {
    const RouteSpec spec{.dst = IpNet::parse("10.3.0.0/24"),
                         .gw = IpAddress::parse("203.0.113.1"),
                         .ifindex = t.index,
                         .onlink = true};
    cni::add_route(t.ns.sock, spec);
    auto r = routes_to(t.ns.sock, "10.3.0.0/24");
    REQUIRE(r.size() == 1);
    CHECK(r[0].onlink);
    CHECK(r[0].gw == IpAddress::parse("203.0.113.1"));
    const auto j = t.ns.ip("route show 10.3.0.0/24").at(0);
    CHECK(j.at("gateway") == "203.0.113.1");
    const auto& flags = j.at("flags");
    CHECK(std::find(flags.begin(), flags.end(), "onlink") != flags.end());
    cni::delete_route(t.ns.sock, spec);
    CHECK(routes_to(t.ns.sock, "10.3.0.0/24").empty());
  }

  SECTION("an unreachable gateway names the route and the device") {
    try {
      cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.1.0.0/27"),
                                 .gw = IpAddress::parse("198.51.100.2"),
                                 .ifindex = t.index});
      FAIL("no error");
    } catch (const cni::NetlinkError& e) {
      CHECK(e.sys_errno() == ENETUNREACH);
      CHECK(std::string(e.what()).rfind("failed to add route 10.1.0.0/27 via 198.51.100.2 dev " +
                                            t.dev + ": Network is unreachable",
                                        0) == 0);
    }
    CHECK(routes_to(t.ns.sock, "10.1.0.0/27").empty());
  }

  SECTION("another table with a metric") {
    cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.4.0.0/24"),
                               .gw = IpAddress::parse("192.0.2.3"),
                               .ifindex = t.index,
                               .table = 100,
                               .priority = 50});
    CHECK(routes_to(t.ns.sock, "10.4.0.0/24").empty());  // not in main
    auto r = routes_to(t.ns.sock, "10.4.0.0/24", 100);
    REQUIRE(r.size() == 1);
    CHECK(r[0].table == 100u);
    CHECK(r[0].priority == 50u);
    CHECK(routes_to(t.ns.sock, "10.4.0.0/24", std::nullopt).size() == 1);
    const auto j = t.ns.ip("route show table 100").at(0);
    CHECK(j.at("dst") == "10.4.0.0/24");
    CHECK(j.at("metric") == 50);
    // A table above 255 travels in RTA_TABLE only.
    cni::add_route(t.ns.sock,
                   {.dst = IpNet::parse("10.4.1.0/24"), .ifindex = t.index, .table = 1000});
    CHECK(routes_to(t.ns.sock, "10.4.1.0/24", 1000).size() == 1);
    CHECK(t.ns.ip("route show table 1000").at(0).at("dst") == "10.4.1.0/24");
  }

  SECTION("blackhole") {
    cni::add_route(t.ns.sock,
                   {.dst = IpNet::parse("203.0.113.0/24"), .type = cni::RouteType::kBlackhole});
    auto r = routes_to(t.ns.sock, "203.0.113.0/24");
    REQUIRE(r.size() == 1);
    CHECK(r[0].type == cni::RouteType::kBlackhole);
    CHECK(r[0].ifindex == 0);
    CHECK(t.ns.ip("route show 203.0.113.0/24").at(0).at("type") == "blackhole");
    cni::delete_route(t.ns.sock,
                      {.dst = IpNet::parse("203.0.113.0/24"), .type = cni::RouteType::kBlackhole});
    CHECK(routes_to(t.ns.sock, "203.0.113.0/24").empty());
  }

  SECTION("a result route with MTU and advmss") {
    cni::Route route;
    route.dst = IpNet::parse("10.7.0.0/24");
    route.gw = IpAddress::parse("192.0.2.1");
    route.mtu = 1400;
    route.advmss = 1360;
    route.priority = 20;
    cni::add_route(t.ns.sock, cni::route_spec_from(route, t.index));
    auto r = routes_to(t.ns.sock, "10.7.0.0/24");
    REQUIRE(r.size() == 1);
    CHECK(r[0].mtu == 1400u);
    CHECK(r[0].advmss == 1360u);
    CHECK(r[0].priority == 20u);
    const auto j = t.ns.ip("-d route show 10.7.0.0/24").at(0);
    CHECK(j.at("metrics").at(0).at("mtu") == 1400);
    CHECK(j.at("metrics").at(0).at("advmss") == 1360);
    // A listed route deletes itself.
    cni::delete_route(t.ns.sock, r[0]);
    CHECK(routes_to(t.ns.sock, "10.7.0.0/24").empty());
  }

  SECTION("IPv6 and the default route") {
    cni::add_address(t.ns.sock, t.dev, IpNet::parse("2001:db8::10/64"), {.nodad = true});
    cni::add_route(t.ns.sock, {.dst = IpNet::parse("2001:db8:1::/64"),
                               .gw = IpAddress::parse("2001:db8::1"),
                               .ifindex = t.index,
                               .priority = 10});
    auto r = routes_to(t.ns.sock, "2001:db8:1::/64");
    REQUIRE(r.size() == 1);
    CHECK(r[0].gw == IpAddress::parse("2001:db8::1"));
    CHECK(r[0].priority == 10u);
    const auto j = t.ns.ip("-6 route show 2001:db8:1::/64").at(0);
    CHECK(j.at("gateway") == "2001:db8::1");
    CHECK(j.at("metric") == 10);

    cni::add_route(t.ns.sock, {.dst = IpNet::parse("0.0.0.0/0"),
                               .gw = IpAddress::parse("192.0.2.1"),
                               .ifindex = t.index});
    r = routes_to(t.ns.sock, "0.0.0.0/0");
    REQUIRE(r.size() == 1);
    CHECK(t.ns.ip("route show default").at(0).at("gateway") == "192.0.2.1");
    CHECK(cni::default_route_link(t.ns.sock, AF_INET)->index == t.index);
    CHECK(r[0].str(t.dev) == "0.0.0.0/0 via 192.0.2.1 dev " + t.dev + " metric 0");
  }

  SECTION("list_routes filters by device and lists the local table on request") {
    cni::add_route(t.ns.sock, {.dst = IpNet::parse("10.8.0.0/24"), .ifindex = t.index});
    for (const auto& r : cni::list_routes(t.ns.sock, AF_INET, {.ifindex = t.index})) {
      CHECK(r.ifindex == t.index);
      CHECK(r.table == cni::kMainTable);
    }
    CHECK(cni::list_routes(t.ns.sock, AF_INET, {.ifindex = t.index}).size() == 2);
    bool local_seen = false;
    for (const auto& r : cni::list_routes(t.ns.sock, AF_INET, {.table = std::nullopt})) {
      if (r.table == cni::kLocalTable && r.dst == IpNet::parse("192.0.2.10/32")) {
        local_seen = true;
        CHECK(r.type == cni::RouteType::kLocal);
      }
    }
    CHECK(local_seen);
  }
}
