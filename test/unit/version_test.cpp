#include <catch2/catch.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/version.h"

TEST_CASE("supported versions are 0.3.0 to 1.1.0, oldest first", "[version]") {
  CHECK(cni::supported_versions() ==
        std::vector<std::string>{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"});
}

TEST_CASE("versions compare numerically", "[version]") {
  CHECK(cni::version_at_least("1.1.0", "0.4.0"));
  CHECK(cni::version_at_least("0.10.0", "0.4.0"));
  CHECK_FALSE(cni::version_at_least("0.3.1", "0.4.0"));
  CHECK(cni::parse_version("1.0") == cni::SemVer{1, 0, 0});
}

TEST_CASE("bad or unsupported versions are code 1 naming the version", "[version]") {
  for (const char* bad : {"", "1", "x.y.z", "1.0.0.0", "1.0.0-rc1", "-1.0.0"}) {
    try {
      cni::parse_version(bad);
      FAIL("accepted " << bad);
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrIncompatibleVersion);
    }
  }
  try {
    cni::require_supported_version("0.2.0", cni::supported_versions());
    FAIL("0.2.0 accepted");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 1);
    CHECK_THAT(e.msg(), Catch::Contains("\"0.2.0\"") && Catch::Contains("1.1.0"));
  }
}
