#include <catch2/catch.hpp>

#include "libcni/kernel/link.h"
#include "libcni/kernel/route.h"

using cni::IpAddress;
using cni::IpNet;
using cni::RouteSpec;

TEST_CASE("RouteSpec::str reads like ip route", "[route]") {
  RouteSpec r;
  r.dst = IpNet::parse("10.1.0.7/27");
  r.gw = IpAddress::parse("192.0.2.2");
  r.ifindex = 4;
  CHECK(r.str() == "10.1.0.0/27 via 192.0.2.2 dev if4");
  CHECK(r.str("eth0") == "10.1.0.0/27 via 192.0.2.2 dev eth0");
  r.onlink = true;
  r.table = 100;
  r.priority = 10;
  r.mtu = 1400;
  CHECK(r.str("eth0") == "10.1.0.0/27 via 192.0.2.2 dev eth0 onlink table 100 metric 10 mtu 1400");

  RouteSpec bh;
  bh.dst = IpNet::parse("203.0.113.0/24");
  bh.type = cni::RouteType::kBlackhole;
  CHECK(bh.str() == "blackhole 203.0.113.0/24");
}

TEST_CASE("route_spec_from maps a result route", "[route]") {
  cni::Route route;
  route.dst = IpNet::parse("0.0.0.0/0");
  route.gw = IpAddress::parse("10.1.0.1");
  route.mtu = 1450;
  route.advmss = 1400;
  route.priority = 100;
  route.table = 200;
  route.scope = 253;
  RouteSpec r = cni::route_spec_from(route, 7);
  CHECK(r.dst == route.dst);
  CHECK(r.gw == route.gw);
  CHECK(r.ifindex == 7);
  CHECK(r.mtu == 1450u);
  CHECK(r.advmss == 1400u);
  CHECK(r.priority == 100u);
  CHECK(r.table == 200u);
  CHECK(r.scope == cni::RouteScope::kLink);
  CHECK(r.type == cni::RouteType::kUnicast);

  cni::Route bare;
  bare.dst = IpNet::parse("10.2.0.0/16");
  RouteSpec b = cni::route_spec_from(bare, 3);
  CHECK_FALSE(b.gw.has_value());
  CHECK(b.table == cni::kMainTable);
  CHECK_FALSE(b.scope.has_value());
  CHECK_FALSE(b.priority.has_value());
  CHECK_FALSE(b.mtu.has_value());
}

TEST_CASE("macvlan modes parse and print", "[link]") {
  for (const char* name : {"bridge", "private", "vepa", "passthru", "source"}) {
    auto mode = cni::parse_macvlan_mode(name);
    REQUIRE(mode.has_value());
    CHECK(cni::to_string(*mode) == name);
    CHECK(cni::macvlan_mode_from_kernel(cni::to_kernel(*mode)) == mode);
  }
  CHECK(cni::to_kernel(cni::MacvlanMode::kBridge) == 4u);
  CHECK(cni::to_kernel(cni::MacvlanMode::kPassthru) == 8u);
  CHECK_FALSE(cni::parse_macvlan_mode("Bridge").has_value());
  CHECK_FALSE(cni::parse_macvlan_mode("").has_value());
  CHECK_FALSE(cni::macvlan_mode_from_kernel(3).has_value());
}

TEST_CASE("LinkRef describes itself", "[link]") {
  CHECK(cni::LinkRef("eth0").str() == "\"eth0\"");
  CHECK(cni::LinkRef(5).str() == "index 5");
  cni::LinkInfo info;
  info.index = 9;
  info.name = "net1";
  cni::LinkRef ref(info);
  CHECK(ref.index == 9);
  CHECK(ref.str() == "\"net1\"");
}
