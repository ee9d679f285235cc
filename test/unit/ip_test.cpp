#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "libcni/core/ip.h"

using cni::IpAddress;
using cni::IpNet;

TEST_CASE("IPv4 addresses parse, print and do arithmetic", "[ip]") {
  auto a = IpAddress::parse("10.1.2.3");
  CHECK(a.is_v4());
  CHECK(a.family() == AF_INET);
  CHECK(a.str() == "10.1.2.3");
  CHECK((a + 1).str() == "10.1.2.4");
  CHECK((a + 253).str() == "10.1.3.0");
  CHECK((a - 4).str() == "10.1.1.255");
  CHECK((IpAddress::parse("255.255.255.255") + 1).str() == "0.0.0.0");
  CHECK(static_cast<uint64_t>(IpAddress::parse("10.1.3.0") - a) == 253);
  CHECK(IpAddress::parse("10.0.0.9") < IpAddress::parse("10.0.0.10"));
}

TEST_CASE("IPv6 addresses parse, print and do arithmetic", "[ip]") {
  auto a = IpAddress::parse("2001:db8::ffff");
  CHECK(a.is_v6());
  CHECK((a + 1).str() == "2001:db8::1:0");
  CHECK((IpAddress::parse("2001:db8::") - 1).str() == "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff");
  CHECK(IpAddress::parse("::1") < IpAddress::parse("::2"));
  CHECK(IpAddress::parse("10.0.0.1") != IpAddress::parse("::a00:1"));
}

TEST_CASE("invalid addresses are rejected with the text in the message", "[ip]") {
  for (const char* bad : {"", "10.1.2", "10.1.2.256", "1.2.3.4 ", "gg::1", "10.0.0.1/24"}) {
    CHECK_FALSE(IpAddress::try_parse(bad).has_value());
  }
  CHECK_THROWS_WITH(IpAddress::parse("10.1.2.300"), Catch::Contains("\"10.1.2.300\""));
}

TEST_CASE("CIDRs: network, last, contains, overlaps, host bits", "[ip]") {
  auto n = IpNet::parse("10.1.2.77/24");
  CHECK(n.str() == "10.1.2.77/24");
  CHECK(n.network().str() == "10.1.2.0/24");
  CHECK(n.last().str() == "10.1.2.255");
  CHECK(n.has_host_bits());
  CHECK_FALSE(n.network().has_host_bits());
  CHECK(n.contains(IpAddress::parse("10.1.2.255")));
  CHECK_FALSE(n.contains(IpAddress::parse("10.1.3.0")));
  CHECK_FALSE(n.contains(IpAddress::parse("::1")));
  CHECK(static_cast<uint64_t>(n.size()) == 256);
  CHECK(IpNet::parse("10.1.0.0/16").overlaps(IpNet::parse("10.1.200.0/27")));
  CHECK_FALSE(IpNet::parse("10.1.0.0/27").overlaps(IpNet::parse("10.1.0.32/27")));
  auto v6 = IpNet::parse("2001:db8::/64");
  CHECK(v6.last().str() == "2001:db8::ffff:ffff:ffff:ffff");
  CHECK(static_cast<uint64_t>(IpNet::parse("2001:db8::/122").size()) == 64);
  CHECK(IpNet::parse("0.0.0.0/0").contains(IpAddress::parse("203.0.113.9")));
  CHECK(IpNet::parse("::/0").last().str() == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST_CASE("CIDR parsing rejects bad prefixes; bare addresses only when allowed", "[ip]") {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/2x", "::/129"}) {
    CHECK_FALSE(IpNet::try_parse(bad).has_value());
  }
  CHECK_FALSE(IpNet::try_parse("10.0.0.1").has_value());
  auto bare = IpNet::try_parse("10.0.0.1", true);
  REQUIRE(bare.has_value());
  CHECK(bare->prefix == 32);
}
