#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/host_local/config.h"
#include "ipam/host_local/resolv_conf.h"
#include "ipam/range.h"
#include "libcni/core/error.h"
#include "test/support/host_local_fixture.h"

using cni::IpAddress;
using cni::IpNet;
using ipam::Range;
using ipam::RangeError;
using ipam::RangeIterator;
using ipam::RangeSet;
using nlohmann::json;

namespace {

IpAddress ip(const char* s) { return IpAddress::parse(s); }
IpNet net(const char* s) { return IpNet::parse(s); }

std::string range_error_key(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const RangeError& e) {
    return e.key() + ": " + e.what();
  }
  FAIL("no RangeError thrown");
  return "";
}

std::vector<std::string> walk(const RangeSet& set, std::optional<IpAddress> last,
                              size_t max = 100) {
  std::vector<std::string> out;
  RangeIterator it(set, last);
  while (auto c = it.next()) {
    out.push_back(c->ip.str());
    if (out.size() >= max) break;
  }
  return out;
}

}  // namespace

TEST_CASE("range defaults follow upstream host-local", "[host-local][range]") {
  SECTION("IPv4 /24: .1 to .254, gateway .1") {
    Range r = Range::make(net("10.1.0.0/24"));
    CHECK(r.start == ip("10.1.0.1"));
    CHECK(r.end == ip("10.1.0.254"));
    CHECK(r.gateway == ip("10.1.0.1"));
    CHECK(r.str() == "10.1.0.1-10.1.0.254");
    CHECK(r.capacity() == 253);  // .1 .. .254 without the gateway
  }
  SECTION("IPv6: the last address, gateway ::1") {
    Range r = Range::make(net("fd00:1::/120"));
    CHECK(r.start == ip("fd00:1::1"));
    CHECK(r.end == ip("fd00:1::ff"));
    CHECK(r.gateway == ip("fd00:1::1"));
    CHECK(r.capacity() == 254);
  }
  SECTION("explicit values are kept; a gateway outside the range is not subtracted") {
    Range r = Range::make(net("10.1.0.0/16"), ip("10.1.1.20"), ip("10.1.3.50"), ip("10.1.0.254"));
    CHECK(r.start == ip("10.1.1.20"));
    CHECK(r.end == ip("10.1.3.50"));
    CHECK(r.gateway == ip("10.1.0.254"));
    CHECK(r.capacity() == 2 * 256 + 31);
  }
  SECTION("/30 has one address to hand out") {
    Range r = Range::make(net("10.1.0.0/30"));
    CHECK(r.str() == "10.1.0.1-10.1.0.2");
    CHECK(r.capacity() == 1);
  }
}

TEST_CASE("range validation names the key", "[host-local][range]") {
  CHECK(range_error_key([] { Range::make(net("10.1.0.5/24")); }) ==
        "subnet: \"10.1.0.5/24\" has host bits set (network is 10.1.0.0/24)");
  for (const char* small : {"10.1.0.0/31", "10.1.0.0/32", "fd00::/127", "fd00::/128"}) {
    CAPTURE(small);
    CHECK(range_error_key([&] { Range::make(net(small)); }) ==
          std::string("subnet: network ") + small + " too small to allocate from");
  }
  CHECK(range_error_key([] { Range::make(net("10.1.0.0/24"), ip("10.2.0.5")); }) ==
        "rangeStart: 10.2.0.5 is not in network 10.1.0.0/24");
  CHECK(range_error_key([] { Range::make(net("10.1.0.0/24"), {}, ip("10.1.1.0")); }) ==
        "rangeEnd: 10.1.1.0 is not in network 10.1.0.0/24");
  CHECK(range_error_key([] { Range::make(net("10.1.0.0/24"), ip("10.1.0.9"), ip("10.1.0.8")); }) ==
        "rangeStart: rangeStart 10.1.0.9 is after rangeEnd 10.1.0.8");
  CHECK(range_error_key([] { Range::make(net("10.1.0.0/24"), {}, {}, ip("fd00::1")); }) ==
        "gateway: fd00::1 is not an IPv4 address like 10.1.0.0/24");
  CHECK(range_error_key([] {
          Range::make(net("::ffff:10.1.0.0/120"));
        }).starts_with("subnet: network"));
}

TEST_CASE("range sets: families, overlaps, lookups", "[host-local][range]") {
  Range a = Range::make(net("10.1.0.0/24"));
  Range b = Range::make(net("10.2.0.0/24"));
  Range v6 = Range::make(net("fd00::/64"));
  RangeSet set = RangeSet::make({a, b});
  CHECK(set.str() == "10.1.0.1-10.1.0.254,10.2.0.1-10.2.0.254");
  CHECK(set.range_for(ip("10.2.0.7")) == &set.ranges[1]);
  CHECK(set.range_for(ip("10.2.0.255")) == nullptr);  // the broadcast is outside the range
  CHECK(set.range_for(ip("fd00::1")) == nullptr);
  CHECK(set.capacity() == 2 * 253);

  CHECK(range_error_key([&] {
          RangeSet::make({a, v6});
        }).starts_with("[1]: mixed address families"));
  Range half = Range::make(net("10.1.0.0/24"), ip("10.1.0.100"), ip("10.1.0.200"));
  CHECK(range_error_key([&] {
          RangeSet::make({a, half});
        }) == "[1]: range 10.1.0.100-10.1.0.200 overlaps range [0] 10.1.0.1-10.1.0.254");
  // Two disjoint pieces of one subnet are fine.
  Range low = Range::make(net("10.1.0.0/24"), ip("10.1.0.2"), ip("10.1.0.99"));
  CHECK_NOTHROW(RangeSet::make({low, half}));
  CHECK(range_error_key([] { RangeSet::make({}); }) == ": empty range set");

  std::vector<RangeSet> sets = {RangeSet::make({b}), RangeSet::make({v6}), RangeSet::make({half})};
  CHECK_NOTHROW(ipam::check_disjoint({sets[0], sets[1]}));
  sets.push_back(RangeSet::make({a}));
  CHECK(range_error_key([&] { ipam::check_disjoint(sets); }) ==
        "[3]: range set 3 (10.1.0.1-10.1.0.254) overlaps range set 2 (10.1.0.100-10.1.0.200)");
}

TEST_CASE("range iterator walks round robin like upstream's RangeIter", "[host-local][range]") {
  RangeSet one = RangeSet::make({Range::make(net("10.1.0.0/29"))});  // .1-.6, gateway .1
  SECTION("from the start, skipping the gateway") {
    CHECK(walk(one, std::nullopt) ==
          std::vector<std::string>{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"});
  }
  SECTION("after the last reserved, wrapping, the last reserved last") {
    CHECK(walk(one, ip("10.1.0.4")) ==
          std::vector<std::string>{"10.1.0.5", "10.1.0.6", "10.1.0.2", "10.1.0.3", "10.1.0.4"});
  }
  SECTION("a last reserved outside the set starts from the beginning") {
    CHECK(walk(one, ip("10.9.0.4")).front() == "10.1.0.2");
    CHECK(walk(one, ip("fd00::4")).size() == 5);
  }
  SECTION("across ranges, each range's own gateway skipped") {
    RangeSet two = RangeSet::make(
        {Range::make(net("10.1.0.0/24"), ip("10.1.0.10"), ip("10.1.0.12"), ip("10.1.0.11")),
         Range::make(net("10.2.0.0/24"), ip("10.2.0.1"), ip("10.2.0.2"))});
    CHECK(walk(two, std::nullopt) ==
          std::vector<std::string>{"10.1.0.10", "10.1.0.12", "10.2.0.2"});
    CHECK(walk(two, ip("10.2.0.2")) ==
          std::vector<std::string>{"10.1.0.10", "10.1.0.12", "10.2.0.2"});
    CHECK(walk(two, ip("10.1.0.12")) ==
          std::vector<std::string>{"10.2.0.2", "10.1.0.10", "10.1.0.12"});
  }
  SECTION("IPv6 /64 does not need to be enumerated to start") {
    RangeSet big = RangeSet::make({Range::make(net("fd00::/64"))});
    CHECK(walk(big, ip("fd00::ffff:ffff:ffff:fffe"), 3) ==
          std::vector<std::string>{"fd00::ffff:ffff:ffff:ffff", "fd00::2", "fd00::3"});
  }
}

TEST_CASE("addresses print as Go prints them", "[host-local][range]") {
  CHECK(ip("10.1.0.2").str() == "10.1.0.2");
  CHECK(ip("::1.2.3.4").str() == "::102:304");  // glibc: "::1.2.3.4"
  CHECK(ip("::").str() == "::");
  CHECK(ip("::1").str() == "::1");
  CHECK(ip("FD00:0:0:0:0:0:0:2").str() == "fd00::2");
  CHECK(ip("2001:db8:0:0:1:0:0:1").str() == "2001:db8::1:0:0:1");
  CHECK(ip("1:0:1:0:1:0:1:0").str() == "1:0:1:0:1:0:1:0");
  CHECK(ip("fd00:0:0:1::").str() == "fd00:0:0:1::");
}

TEST_CASE("resolv.conf is parsed like upstream's dns.go", "[host-local]") {
  cni::Dns d = ipam::parse_resolv_conf(
      "# comment\n; also\nnameserver 192.0.2.53\n  nameserver\t2001:db8::53 extra\n"
      "domain a.example\ndomain b.example\nsearch x.example y.example\nsearch z.example\n"
      "options ndots:5 edns0\nsortlist 10.0.0.0\nnameserver\n\n");
  CHECK(d.nameservers == std::vector<std::string>{"192.0.2.53", "2001:db8::53"});
  CHECK(d.domain == "b.example");
  CHECK(d.search == std::vector<std::string>{"x.example", "y.example", "z.example"});
  CHECK(d.options == std::vector<std::string>{"ndots:5", "edns0"});
  CHECK(ipam::parse_resolv_conf("").empty());
  CHECK_THROWS_WITH(ipam::read_resolv_conf("/nonexistent/resolv.conf"),
                    Catch::Contains("\"/nonexistent/resolv.conf\""));
}

namespace {

ipam::HostLocalConfig parse(const json& conf, const std::string& cni_args = "") {
  cni::Env env;
  env.args = cni::parse_cni_args(cni_args);
  return ipam::parse_host_local_config(cni::parse_netconf(conf.dump(), cni::supported_versions()),
                                       env);
}

json base() {
  return {{"cniVersion", "1.1.0"},
          {"name", "net1"},
          {"type", "x"},
          {"ipam", {{"type", "host-local"}, {"ranges", {{{{"subnet", "10.1.0.0/24"}}}}}}}};
}

std::string config_error(const json& conf, const std::string& cni_args = "") {
  auto e = host_local_test::error_of([&] { parse(conf, cni_args); });
  return std::to_string(e.code()) + " " + e.msg();
}

}  // namespace

TEST_CASE("host-local config: keys, order and defaults", "[host-local][config]") {
  SECTION("defaults") {
    auto c = parse(base());
    CHECK(c.network == "net1");
    CHECK(c.data_dir == "/var/lib/cni/networks");
    CHECK(c.resolv_conf.empty());
    REQUIRE(c.range_sets.size() == 1);
    CHECK(c.range_sets[0].str() == "10.1.0.1-10.1.0.254");
    CHECK(c.routes.empty());
    CHECK(c.requested.empty());
  }
  SECTION("range sets in upstream's order: ipRanges, legacy range, ranges") {
    json j = base();
    j["ipam"]["subnet"] = "10.2.0.0/24";
    j["ipam"]["rangeStart"] = "10.2.0.10";
    j["ipam"]["ranges"].push_back({{{"subnet", "fd00::/64"}}});
    j["runtimeConfig"]["ipRanges"] = {{{{"subnet", "10.3.0.0/24"}, {"gateway", "10.3.0.254"}}}};
    j["ipam"]["dataDir"] = "/run/x";
    j["ipam"]["resolvConf"] = "/etc/r.conf";
    auto c = parse(j);
    REQUIRE(c.range_sets.size() == 4);
    CHECK(c.range_sets[0].str() == "10.3.0.1-10.3.0.254");
    CHECK(c.range_sets[0].ranges[0].gateway == ip("10.3.0.254"));
    CHECK(c.range_sets[1].str() == "10.2.0.10-10.2.0.254");
    CHECK(c.range_sets[2].str() == "10.1.0.1-10.1.0.254");
    CHECK(c.range_sets[3].str() == "fd00::1-fd00::ffff:ffff:ffff:ffff");
    CHECK(c.data_dir == "/run/x");
    CHECK(c.resolv_conf == "/etc/r.conf");
  }
  SECTION("routes pass through, gw absent stays absent") {
    json j = base();
    j["ipam"]["routes"] = {{{"dst", "0.0.0.0/0"}},
                           {{"dst", "192.168.0.0/16"}, {"gw", "10.1.0.5"}},
                           {{"dst", "3ffe:ffff:0:1ff::1/64"}}};
    auto c = parse(j);
    REQUIRE(c.routes.size() == 3);
    CHECK(c.routes[0].dst.str() == "0.0.0.0/0");
    CHECK_FALSE(c.routes[0].gw);
    CHECK(c.routes[1].gw == ip("10.1.0.5"));
    CHECK(c.routes[2].dst.str() == "3ffe:ffff:0:1ff::1/64");
  }
  SECTION("requested addresses from CNI_ARGS, args.cni.ips and runtimeConfig.ips") {
    json j = base();
    j["args"]["cni"]["ips"] = {"10.1.0.7", "10.1.0.5"};
    j["runtimeConfig"]["ips"] = {"10.1.0.8/24", "::ffff:10.1.0.9"};
    auto c = parse(j, "IgnoreUnknown=1;IP=10.1.0.5,10.1.0.6");
    std::vector<std::string> got;
    for (const auto& r : c.requested) got.push_back(r.ip.str() + " " + r.source);
    CHECK(got == std::vector<std::string>{
                     "10.1.0.5 CNI_ARGS IP", "10.1.0.6 CNI_ARGS IP", "10.1.0.7 args.cni.ips[0]",
                     "10.1.0.8 runtimeConfig.ips[0]", "10.1.0.9 runtimeConfig.ips[1]"});
  }
}

TEST_CASE("host-local config errors name the key and the value", "[host-local][config]") {
  json j = base();
  j.erase("ipam");
  CHECK(config_error(j) ==
        "7 invalid config: \"ipam\": is required (IPAM config missing 'ipam' key)");

  j = base();
  j["ipam"].erase("ranges");
  CHECK(config_error(j) == "7 invalid config: \"ipam.ranges\": no IP ranges specified");

  j = base();
  j["ipam"]["ranges"][0].push_back({{"subnet", "10.9.0.1/24"}});
  CHECK(config_error(j) ==
        "7 invalid config: \"ipam.ranges[0][1].subnet\": \"10.9.0.1/24\" has host bits set "
        "(network is 10.9.0.0/24)");

  j = base();
  j["ipam"]["ranges"][0][0]["rangeEnd"] = "10.1.1.1";
  CHECK(config_error(j) ==
        "7 invalid config: \"ipam.ranges[0][0].rangeEnd\": 10.1.1.1 is not in network 10.1.0.0/24");

  j = base();
  j["ipam"]["ranges"][0][0]["subnet"] = "10.1.0.0/31";
  CHECK(config_error(j) ==
        "7 invalid config: \"ipam.ranges[0][0].subnet\": network 10.1.0.0/31 "
        "too small to allocate from");

  j = base();
  j["ipam"]["ranges"][0].push_back({{"subnet", "10.1.0.0/25"}});
  CHECK(config_error(j) ==
        "7 invalid config: \"ipam.ranges[0][1]\": range 10.1.0.1-10.1.0.126 "
        "overlaps range [0] 10.1.0.1-10.1.0.254");

  j = base();
  j["ipam"]["ranges"].push_back({{{"subnet", "10.1.0.128/25"}}});
  CHECK(config_error(j) ==
        "7 invalid config: \"ipam.ranges[1]\": range set 1 (10.1.0.129-10.1.0.254) overlaps "
        "range set 0 (10.1.0.1-10.1.0.254)");

  j = base();
  j["ipam"]["subnet"] = "10.1.0.0/16";
  CHECK(config_error(j).starts_with("7 invalid config: \"ipam.ranges[0]\": range set 1"));

  j = base();
  j["runtimeConfig"]["ipRanges"] = {{{{"subnet", "10.5.0.0/24"}, {"rangeStart", "10.6.0.1"}}}};
  CHECK(config_error(j) ==
        "7 invalid config: \"runtimeConfig.ipRanges[0][0].rangeStart\": "
        "10.6.0.1 is not in network 10.5.0.0/24");

  j = base();
  j["ipam"]["ranges"] = json::array({json::array()});
  CHECK(config_error(j) == "7 invalid config: \"ipam.ranges[0]\": empty range set");

  j = base();
  j["ipam"]["ranges"] = {"10.1.0.0/24"};
  CHECK(config_error(j).starts_with("7 invalid config: \"ipam.ranges[0]\": must be a list"));

  j = base();
  j["ipam"]["routes"] = {{{"gw", "10.1.0.1"}}};
  CHECK(config_error(j) == "7 invalid config: \"ipam.routes[0].dst\": is required");

  j = base();
  j["args"]["cni"]["ips"] = {"10.1.0.300"};
  CHECK(config_error(j) ==
        "7 invalid config: \"args.cni.ips[0]\": \"10.1.0.300\" is not an IP address");

  j = base();
  CHECK(config_error(j, "IP=10.1.0.5,nope") ==
        "4 invalid CNI_ARGS: IP=10.1.0.5,nope: \"nope\" is not an IP address");
}
