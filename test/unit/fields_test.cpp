#include <catch2/catch.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"
#include "test/support/config_error.h"

using nlohmann::json;

namespace {
using strait::unit::config_error;
}  // namespace

TEST_CASE("typed reads name the key path and the value", "[fields]") {
  json j = {{"mtu", "1500"},
            {"mode", 3},
            {"big", 70000},
            {"neg", -1},
            {"f", 1.5},
            {"ok", true},
            {"ipam", {{"subnet", "10.1.0.1/24"}, {"gw", "10.1.0.300"}}},
            {"list", {"a", 2}}};
  cni::Fields f(j, "");
  CHECK_THAT(config_error([&] { f.integer("mtu", 0, 65535); }),
             Catch::Contains("\"mtu\"") && Catch::Contains("\"1500\""));
  CHECK_THAT(config_error([&] { f.str("mode"); }), Catch::Contains("\"mode\": must be a string"));
  CHECK_THAT(config_error([&] { f.integer("big", 0, 65535); }),
             Catch::Contains("70000") && Catch::Contains("out of range"));
  CHECK_THAT(config_error([&] { f.uinteger("neg", 10); }), Catch::Contains("negative"));
  CHECK_THAT(config_error([&] { f.integer("f", 0, 10); }), Catch::Contains("integer"));
  CHECK_THAT(config_error([&] { f.str_list("list"); }), Catch::Contains("\"list[1]\""));
  auto ipam = f.object("ipam");
  REQUIRE(ipam);
  CHECK_THAT(config_error([&] { ipam->cidr("subnet", true); }),
             Catch::Contains("\"ipam.subnet\"") && Catch::Contains("host bits"));
  CHECK(ipam->cidr("subnet", false)->str() == "10.1.0.1/24");
  CHECK_THAT(config_error([&] { ipam->ip("gw"); }), Catch::Contains("\"ipam.gw\""));
  CHECK_THAT(config_error([&] { f.required_str("absent"); }), Catch::Contains("is required"));
  CHECK(f.boolean_or("ok", false));
  CHECK(f.str_or("absent", "def") == "def");
  CHECK_FALSE(f.integer("absent", 0, 1).has_value());
  CHECK_THAT(config_error([&] { cni::Fields(json(5), "ipam"); }), Catch::Contains("\"ipam\""));
}

TEST_CASE("long values are truncated in messages", "[fields]") {
  json j = {{"k", std::string(10000, 'x')}};
  cni::Fields f(j, "");
  auto msg = config_error([&] { f.integer("k", 0, 1); });
  CHECK(msg.size() < 300);
}
