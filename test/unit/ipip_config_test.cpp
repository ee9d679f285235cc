#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "overlay/node_record.h"
#include "plugins/ipip/ipip_config.h"
#include "plugins/ipip/ipip_tunnel.h"

// The ipip plugin's own key (ipipMode) and the routes its tunnel asks for: always through
// tunl0 onlink, crossSubnet directly to same-subnet nodes, nothing for IPv6 blocks.
namespace {

using nlohmann::json;

json base() {
  return json{{"cniVersion", "1.1.0"},
              {"name", "ipnet"},
              {"type", "ipip"},
              {"ipam",
               {{"type", "global-ipam"},
                {"nodeName", "node-a"},
                {"pools", json::array({{{"name", "p4"}, {"cidr", "10.244.0.0/16"}}})}}}};
}

ipip::IpipConfig parse(const json& j) {
  cni::NetConf conf = cni::netconf_from_json(j, cni::supported_versions());
  return ipip::parse_config(conf, cni::EnvMap{});
}

std::string error_of(const json& j) {
  try {
    parse(j);
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInvalidConfig);
    return e.msg();
  }
  FAIL("no error for " << j.dump());
  return "";
}

overlay::OverlayNode remote(const std::string& underlay) {
  overlay::OverlayNode n;
  n.name = "node-b";
  n.underlay = cni::IpAddress::parse(underlay);
  return n;
}

}  // namespace

TEST_CASE("ipip config: ipipMode defaults to always and takes crossSubnet", "[ipip][config]") {
  CHECK(parse(base()).mode == ipip::Mode::kAlways);
  json j = base();
  j["ipipMode"] = "crossSubnet";
  CHECK(parse(j).mode == ipip::Mode::kCrossSubnet);
  j["ipipMode"] = "always";
  CHECK(parse(j).mode == ipip::Mode::kAlways);
  // The shared keys are the overlays' (overlay/config.h).
  j["mtu"] = 1400;
  j["underlayInterface"] = "eth1";
  const auto c = parse(j);
  CHECK(c.overlay.mtu == 1400);
  CHECK(c.overlay.underlay_interface == "eth1");
}

TEST_CASE("ipip config: bad keys are code 7 naming key and value", "[ipip][config]") {
  json j = base();
  j["ipipMode"] = "never";
  std::string m = error_of(j);
  CHECK(m.find("ipipMode") != std::string::npos);
  CHECK(m.find("never") != std::string::npos);
  j["ipipMode"] = 1;
  CHECK(error_of(j).find("ipipMode") != std::string::npos);
  j = base();
  j["ipam"]["type"] = "host-local";
  m = error_of(j);
  CHECK(m.find("ipam") != std::string::npos);
  CHECK(m.find("ipip") != std::string::npos);
  j = base();
  j["mtu"] = 40;
  CHECK(error_of(j).find("mtu") != std::string::npos);
}

TEST_CASE("ipip tunnel: the route to a remote block follows ipipMode", "[ipip][config]") {
  overlay::Underlay u;
  u.link.index = 2;
  u.link.name = "eth0";
  u.local = cni::IpAddress::parse("192.0.2.10");
  u.local_prefix = 24;
  u.tunnel_mtu = 1480;
  const cni::IpNet block = cni::IpNet::parse("10.244.0.32/27");
  const int tunl0 = 7;

  json j = base();
  const ipip::IpipConfig always = parse(j);
  j["ipipMode"] = "crossSubnet";
  const ipip::IpipConfig cross = parse(j);
  const ipip::IpipTunnel a(always, u), c(cross, u);

  auto r = a.route_to(remote("192.0.2.11"), block, tunl0);
  REQUIRE(r);
  CHECK(r->gw == cni::IpAddress::parse("192.0.2.11"));
  CHECK(r->ifindex == tunl0);
  CHECK(r->onlink);

  r = c.route_to(remote("192.0.2.11"), block, tunl0);  // same subnet: direct
  REQUIRE(r);
  CHECK(r->gw == cni::IpAddress::parse("192.0.2.11"));
  CHECK(r->ifindex == 2);
  CHECK_FALSE(r->onlink);

  r = c.route_to(remote("198.51.100.12"), block, tunl0);  // another subnet: the tunnel
  REQUIRE(r);
  CHECK(r->ifindex == tunl0);
  CHECK(r->onlink);

  // IPv4 only: no route for an IPv6 block, no peer without an IPv4 underlay address.
  CHECK_FALSE(a.route_to(remote("192.0.2.11"), cni::IpNet::parse("fd00:244::/122"), tunl0));
  std::string why;
  CHECK(a.reachable(remote("192.0.2.11"), &why));
  CHECK_FALSE(a.reachable(remote("2001:db8::1"), &why));
  CHECK(why.find("IPv4") != std::string::npos);
  overlay::OverlayNode none;
  CHECK_FALSE(a.reachable(none, &why));
}
