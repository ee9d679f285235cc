#include "libcni/core/mac.h"

#include <catch2/catch.hpp>
#include <stdexcept>

using cni::MacAddress;

TEST_CASE("MacAddress parses colon and dash forms in either case", "[mac]") {
  auto a = MacAddress::parse("0A:1b:2C:3d:4E:5f");
  CHECK(a.str() == "0a:1b:2c:3d:4e:5f");
  CHECK(a.bytes() == std::array<uint8_t, 6>{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f});
  CHECK(MacAddress::parse("0a-1b-2c-3d-4e-5f") == a);
  CHECK(MacAddress::from_bytes(a.data()) == a);
}

TEST_CASE("MacAddress rejects malformed text and names it", "[mac]") {
  for (const char* bad :
       {"", "0a:1b:2c:3d:4e", "0a:1b:2c:3d:4e:5f:", "0a:1b-2c:3d:4e:5f", "0g:1b:2c:3d:4e:5f",
        "0a1b2c3d4e5f", "0a:1b:2c:3d:4e:5", " a:1b:2c:3d:4e:5f"}) {
    INFO(bad);
    CHECK_FALSE(MacAddress::try_parse(bad).has_value());
  }
  CHECK_THROWS_WITH(MacAddress::parse("nope"), "invalid MAC address \"nope\"");
}

TEST_CASE("MacAddress properties", "[mac]") {
  CHECK(MacAddress().is_zero());
  CHECK(MacAddress().str() == "00:00:00:00:00:00");
  CHECK(MacAddress::broadcast().str() == "ff:ff:ff:ff:ff:ff");
  CHECK(MacAddress::broadcast().is_multicast());
  CHECK(MacAddress::parse("01:00:5e:00:00:01").is_multicast());
  CHECK_FALSE(MacAddress::parse("02:00:5e:00:00:01").is_multicast());
  CHECK(MacAddress::parse("02:00:5e:00:00:01").is_locally_administered());
  CHECK_FALSE(MacAddress::parse("00:16:3e:00:00:01").is_locally_administered());
}

TEST_CASE("format_hwaddr formats any length", "[mac]") {
  const uint8_t four[] = {192, 0, 2, 1};
  CHECK(cni::format_hwaddr(four, 4) == "c0:00:02:01");
  CHECK(cni::format_hwaddr(four, 0) == "");
}
