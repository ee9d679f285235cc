#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/iface/check.h"
#include "libcni/iface/configure.h"
#include "libcni/iface/temp_link.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/route.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/result.h"
#include "test/support/kernel_fixture.h"

// libcni/iface on real devices: a "pod" netns holding one end of a veth pair (down, as a
// plugin finds a new device) and a "peer" netns with the other end, up, as the gateway.
using cni::IpAddress;
using cni::IpNet;
using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

struct Pod {
  KernelNs ns{"if"};
  KernelNs peer{"ifp"};
  std::string dev = unique_name("if");
  cni::LinkInfo link;
  std::ostringstream log_text;
  cni::Logger log{log_text, cni::Logger::Level::kInfo};

  Pod() {
    cni::create_veth(ns.sock, {.name = dev, .peer_name = dev + "p", .peer_netns_fd = peer.fd()});
    cni::set_link_up(peer.sock, dev + "p");
    cni::add_address(peer.sock, dev + "p", IpNet::parse("192.0.2.1/24"));
    cni::add_address(peer.sock, dev + "p", IpNet::parse("2001:db8::1/64"), {.nodad = true});
    link = cni::get_link(ns.sock, dev);
  }

  std::string sysctl(const std::string& key) const {
    std::string v = ns.ns.exec("cat /proc/sys/net/" + key);
    return v.substr(0, v.find('\n'));
  }
  std::vector<IpNet> addresses(int family) { return cni::list_addresses(ns.sock, dev, family); }
  std::vector<cni::RouteSpec> routes_to(const std::string& dst) {
    std::vector<cni::RouteSpec> out;
    const IpNet net = IpNet::parse(dst);
    for (auto& r : cni::list_routes(ns.sock, net.ip.family())) {
      if (r.dst == net) out.push_back(r);
    }
    return out;
  }
  cni::Env env() const {
    cni::Env e;
    e.container_id = "ctr1";
    e.ifname = dev;
    e.netns = ns.ns.path();
    return e;
  }
};

cni::IpConfig ip_config(const std::string& address, std::optional<std::string> gateway,
                        std::optional<int> interface = 0) {
  cni::IpConfig ip;
  ip.address = IpNet::parse(address);
  if (gateway) ip.gateway = IpAddress::parse(*gateway);
  ip.interface = interface;
  return ip;
}

cni::Route route(const std::string& dst, std::optional<std::string> gw = std::nullopt) {
  cni::Route r;
  r.dst = IpNet::parse(dst);
  if (gw) r.gw = IpAddress::parse(*gw);
  return r;
}

bool contains(const std::vector<IpNet>& v, const std::string& net) {
  for (const auto& n : v) {
    if (n == IpNet::parse(net)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("configure_interface: sysctls, IPv6, addresses, up, DAD, routes via the gateway",
          "[iface][configure]") {
  Pod p;
  // IPv6 off on the device and on lo: configure_interface turns it on, as upstream.
  p.ns.ns.exec("sysctl -qw net.ipv6.conf.lo.disable_ipv6=1");
  p.ns.ns.exec("sysctl -qw net.ipv6.conf." + p.dev + ".disable_ipv6=1");
  cni::Result r;
  r.ips = {ip_config("192.0.2.10/24", "192.0.2.1"), ip_config("2001:db8::10/64", "2001:db8::1"),
           // Another interface's address, and one of none: not this link's.
           ip_config("198.51.100.7/24", std::nullopt, 1),
           ip_config("198.51.100.8/24", std::nullopt, std::nullopt)};
  r.routes = {route("0.0.0.0/0"), route("::/0"), route("203.0.113.0/24", "192.0.2.254")};

  cni::configure_interface(p.ns.handle, p.ns.sock, p.link, r, 0, p.log);

  CHECK(p.sysctl("ipv4/conf/" + p.dev + "/arp_notify") == "1");
  CHECK(p.sysctl("ipv6/conf/" + p.dev + "/ndisc_notify") == "1");
  CHECK(p.sysctl("ipv6/conf/" + p.dev + "/disable_ipv6") == "0");
  CHECK(p.sysctl("ipv6/conf/lo/disable_ipv6") == "0");
  CHECK(p.addresses(AF_INET) == std::vector<IpNet>{IpNet::parse("192.0.2.10/24")});
  CHECK(contains(p.addresses(AF_INET6), "2001:db8::10/64"));
  CHECK(cni::get_link(p.ns.sock, p.dev).up);
  // The result had an IPv6 gateway: DAD finished before configure_interface returned.
  for (const auto& a : cni::list_address_states(p.ns.sock, p.dev, AF_INET6)) {
    CAPTURE(a.address.str());
    CHECK_FALSE(a.tentative);
  }
  // Gateway-less routes go via the interface's gateway of their family.
  auto v4 = p.routes_to("0.0.0.0/0");
  REQUIRE(v4.size() == 1);
  CHECK(v4[0].gw == IpAddress::parse("192.0.2.1"));
  CHECK(v4[0].ifindex == p.link.index);
  auto v6 = p.routes_to("::/0");
  REQUIRE(v6.size() == 1);
  CHECK(v6[0].gw == IpAddress::parse("2001:db8::1"));
  auto other = p.routes_to("203.0.113.0/24");
  REQUIRE(other.size() == 1);
  CHECK(other[0].gw == IpAddress::parse("192.0.2.254"));
  CHECK_FALSE(other[0].onlink);
  // And the pod reaches its gateway.
  CHECK(p.ns.ns.exec("busybox ping -c 1 -W 2 192.0.2.1").find("1 packets received") !=
        std::string::npos);
}

TEST_CASE("configure_interface for a routed pod: host addresses, onlink, MTU, MAC",
          "[iface][configure]") {
  Pod p;
  cni::Result r;
  r.ips = {ip_config("10.1.0.5/24", "169.254.1.1")};
  r.routes = {route("0.0.0.0/0"), route("10.9.0.0/16")};
  cni::ConfigureOptions o;
  o.announce = false;
  o.host_addresses = true;
  o.onlink = true;
  o.mtu = 1400;
  o.mac = cni::MacAddress::parse("02:00:00:00:ab:01");

  SECTION("gateway-less routes via the interface's gateway") {
    cni::configure_interface(p.ns.handle, p.ns.sock, p.link, r, 0, p.log, o);
    auto via = p.routes_to("10.9.0.0/16");
    REQUIRE(via.size() == 1);
    CHECK(via[0].gw == IpAddress::parse("169.254.1.1"));
    CHECK(via[0].onlink);
  }
  SECTION("routes as given") {
    o.route_via_interface_gateway = false;
    r.routes[0].gw = IpAddress::parse("169.254.1.1");
    cni::configure_interface(p.ns.handle, p.ns.sock, p.link, r, 0, p.log, o);
    auto direct = p.routes_to("10.9.0.0/16");
    REQUIRE(direct.size() == 1);
    CHECK_FALSE(direct[0].gw);
    CHECK(direct[0].scope == cni::RouteScope::kLink);
  }
  // /32, so the kernel made no subnet route; the gateway is reached onlink.
  CHECK(p.addresses(AF_INET) == std::vector<IpNet>{IpNet::parse("10.1.0.5/32")});
  CHECK(p.routes_to("10.1.0.0/24").empty());
  auto def = p.routes_to("0.0.0.0/0");
  REQUIRE(def.size() == 1);
  CHECK(def[0].gw == IpAddress::parse("169.254.1.1"));
  CHECK(def[0].onlink);
  const cni::LinkInfo after = cni::get_link(p.ns.sock, p.dev);
  CHECK(after.mtu == 1400);
  CHECK(after.mac == "02:00:00:00:ab:01");
  CHECK(after.up);
  CHECK(p.sysctl("ipv4/conf/" + p.dev + "/arp_notify") == "0");  // announce off
}

TEST_CASE("configure_interface: DAD failure is an error, a slow DAD only a warning",
          "[iface][configure]") {
  Pod p;
  cni::Result r;
  r.ips = {ip_config("2001:db8::10/64", "2001:db8::1")};

  SECTION("the peer owns the address") {
    cni::add_address(p.peer.sock, p.dev + "p", IpNet::parse("2001:db8::10/64"), {.nodad = true});
    try {
      cni::configure_interface(p.ns.handle, p.ns.sock, p.link, r, 0, p.log);
      FAIL("no error");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrInternal);
      CHECK(e.msg() == "IPv6 address 2001:db8::10 on \"" + p.dev +
                           "\" failed duplicate address detection: another host on the link "
                           "uses it");
    }
  }
  SECTION("DAD outlasts the settle timeout") {
    p.ns.ns.exec("sysctl -qw net.ipv6.conf." + p.dev + ".dad_transmits=30");
    cni::ConfigureOptions o;
    o.settle_timeout = std::chrono::milliseconds(200);
    cni::configure_interface(p.ns.handle, p.ns.sock, p.link, r, 0, p.log, o);
    CHECK_THAT(p.log_text.str(), Catch::Contains("interface \"" + p.dev +
                                                 "\" still has tentative IPv6 addresses after "
                                                 "200 ms"));
  }
}

TEST_CASE("CHECK helpers: the attachment's interface, MAC, addresses and routes",
          "[iface][check]") {
  Pod p;
  cni::Result r;
  r.ips = {ip_config("192.0.2.10/24", "192.0.2.1")};
  r.routes = {route("0.0.0.0/0"), route("203.0.113.0/24", "192.0.2.254")};
  cni::configure_interface(p.ns.handle, p.ns.sock, p.link, r, 0, p.log);
  const cni::LinkInfo link = cni::get_link(p.ns.sock, p.dev);
  const cni::Env env = p.env();

  cni::Result prev = r;
  cni::Interface host_side;
  host_side.name = p.dev;
  cni::Interface pod_side = host_side;
  pod_side.sandbox = env.netns;
  prev.interfaces = {host_side, pod_side};
  prev.ips[0].interface = 1;
  CHECK(cni::find_prev_interface(prev, env) == std::optional<size_t>(1));
  CHECK_FALSE(cni::find_prev_interface(cni::Result{}, env));

  CHECK(cni::check_link(p.ns.sock, env, "veth").index == link.index);
  cni::Env gone = env;
  gone.ifname = "nosuch0";
  CHECK_THROWS_WITH(cni::check_link(p.ns.sock, gone, "veth"),
                    "CHECK failed: interface \"nosuch0\" not found in netns \"" + env.netns + "\"");
  CHECK_THROWS_WITH(cni::check_link(p.ns.sock, env, "macvlan"),
                    "CHECK failed: interface \"" + p.dev + "\" is a veth, not a macvlan");
  try {
    cni::check_failed("x");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInternal);  // as upstream's plain errors come out of skel
  }
  CHECK(cni::describe_kind(cni::get_link(p.ns.sock, "lo")) == "not a virtual device");

  // MACs compare after normalisation; an empty one is not checked.
  std::string upper = link.mac;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(cni::same_mac(upper, link.mac));
  pod_side.mac = upper;
  CHECK_NOTHROW(cni::check_mac(link, pod_side));
  pod_side.mac = "";
  CHECK_NOTHROW(cni::check_mac(link, pod_side));
  pod_side.mac = "02:00:00:00:aa:09";
  CHECK_THROWS_WITH(cni::check_mac(link, pod_side), "CHECK failed: interface \"" + p.dev +
                                                        "\" has MAC " + link.mac +
                                                        ", prevResult says 02:00:00:00:aa:09");

  CHECK_NOTHROW(cni::check_addresses(p.ns.sock, link, prev, 1));
  prev.ips.push_back(ip_config("192.0.2.11/24", std::nullopt, 1));
  CHECK_THROWS_WITH(
      cni::check_addresses(p.ns.sock, link, prev, 1),
      "CHECK failed: address 192.0.2.11/24 of prevResult is not on interface \"" + p.dev + "\"");
  // Addresses of another interface are not this link's business.
  CHECK_NOTHROW(cni::check_addresses(p.ns.sock, link, prev, 0));

  CHECK_NOTHROW(cni::check_routes(p.ns.sock, prev, env.netns));
  // A later plugin moved the route to another metric: tolerated.
  p.ns.ns.exec("ip route del 203.0.113.0/24");
  p.ns.ns.exec("ip route add 203.0.113.0/24 via 192.0.2.254 dev " + p.dev + " metric 50");
  CHECK_NOTHROW(cni::check_routes(p.ns.sock, prev, env.netns));
  // A different gateway is not the route of prevResult.
  p.ns.ns.exec("ip route change 203.0.113.0/24 via 192.0.2.253 dev " + p.dev + " metric 50");
  CHECK_THROWS_WITH(
      cni::check_routes(p.ns.sock, prev, env.netns),
      "CHECK failed: route 203.0.113.0/24 via 192.0.2.254 of prevResult is not in the routing "
      "table of netns \"" +
          env.netns + "\"");
}

TEST_CASE("delete_leftover_link deletes a leftover of its kind only", "[iface][temp-link]") {
  KernelNs ns("tl");
  std::ostringstream text;
  cni::Logger log(text, cni::Logger::Level::kInfo);
  cni::Env env;
  env.container_id = unique_name("ctr", 40);
  env.ifname = "net1";
  const std::string name = cni::temp_link_name("tl", env);
  CHECK_FALSE(cni::delete_leftover_link(ns.sock, name, "veth", "netns \"x\"", log));
  cni::create_veth(ns.sock, {.name = name, .peer_name = unique_name("tlp")});
  // Not of the kind asked for: someone else's device stays.
  CHECK_FALSE(cni::delete_leftover_link(ns.sock, name, "macvlan", "netns \"x\"", log));
  CHECK(cni::find_link(ns.sock, name));
  CHECK(text.str().empty());
  CHECK(cni::delete_leftover_link(ns.sock, name, "veth", "netns \"x\"", log));
  CHECK_FALSE(cni::find_link(ns.sock, name));
  CHECK_THAT(text.str(), Catch::Contains("deleting " + name +
                                         " in netns \"x\", left by an ADD that did not finish"));
}
