#include <sys/socket.h>

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/config.h"
#include "libcni/core/error.h"
#include "overlay/nat.h"
#include "overlay/nftables.h"

// natOutgoing as global-ipam reads it and the strait-nat table the overlay agents want from
// it (overlay/nat.h); the kernel side is test/integration/vxlan_nat_test.cpp.
namespace {

using nlohmann::json;

std::vector<ipam::PoolConfig> pools_of(const json& pools) {
  return ipam::parse_global_ipam({{"pools", pools}, {"nodeName", "n1"}}, "ipam", {}).pools;
}

}  // namespace

TEST_CASE("natOutgoing: unset means true, false and true are kept", "[nat][config]") {
  const auto pools = pools_of({{{"name", "a"}, {"cidr", "10.1.0.0/24"}},
                               {{"name", "b"}, {"cidr", "10.2.0.0/24"}, {"natOutgoing", false}},
                               {{"name", "c"}, {"cidr", "10.3.0.0/24"}, {"natOutgoing", true}}});
  CHECK_FALSE(pools[0].nat_outgoing);
  CHECK(pools[0].masquerades());
  CHECK_FALSE(pools[1].masquerades());
  CHECK(pools[2].masquerades());
}

TEST_CASE("natOutgoing: a non-boolean is code 7 naming the key and the value", "[nat][config]") {
  for (const json& bad : {json("false"), json(1), json::array()}) {
    INFO(bad.dump());
    try {
      pools_of({{{"name", "a"}, {"cidr", "10.1.0.0/24"}, {"natOutgoing", bad}}});
      FAIL("no error");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrInvalidConfig);
      CHECK(e.msg().find("ipam.pools[0].natOutgoing") != std::string::npos);
      CHECK(e.msg().find(bad.dump()) != std::string::npos);
    }
  }
}

TEST_CASE("the NAT table returns every pool and masquerades the natOutgoing ones", "[nat]") {
  const auto pools =
      pools_of({{{"name", "a"}, {"cidr", "10.1.0.0/24"}},
                {{"name", "b"}, {"cidr", "10.2.0.0/16"}, {"natOutgoing", false}},
                {{"name", "v6"}, {"cidr", "fd00:10::/120"}, {"natOutgoing", false}}});
  CHECK(overlay::nat_table(pools, AF_INET) ==
        "table ip strait-nat {\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        "\t\tip daddr 10.1.0.0/24 return\n"
        "\t\tip daddr 10.2.0.0/16 return\n"
        "\t\tip saddr 10.1.0.0/24 masquerade\n"
        "\t}\n"
        "}\n");
  // No IPv6 pool masquerades: no ip6 table.
  CHECK(overlay::nat_table(pools, AF_INET6).empty());
  const auto v6 = pools_of({{{"name", "v6"}, {"cidr", "fd00:10::/120"}}});
  CHECK(overlay::nat_table(v6, AF_INET6)
            .find("\t\tip6 daddr fd00:10::/120 return\n"
                  "\t\tip6 saddr fd00:10::/120 masquerade\n") != std::string::npos);
  CHECK(overlay::nat_table(v6, AF_INET).empty());
}

// What nftables refuses comes back as NftError with our summary and nft's own message (a
// syntax error: refused before anything reaches the kernel).
TEST_CASE("nftables: a refused command names what was tried and nft's message", "[nat]") {
  overlay::Nftables nft;
  try {
    nft.run("add tabel ip strait-nat", "cannot add the table");
    FAIL("no error");
  } catch (const overlay::NftError& e) {
    const std::string what = e.what();
    CHECK(what.rfind("cannot add the table: ", 0) == 0);
    CHECK(what.find("syntax error") != std::string::npos);
  }
}
