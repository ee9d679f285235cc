#include "libcni/core/hash.h"

#include <catch2/catch.hpp>

// The values are pinned (computed independently): a name one version derives must be
// derivable by the next, so a change here is a compatibility break, not a test update.
TEST_CASE("hash: FNV-1a 64 over NUL-terminated parts", "[hash]") {
  STATIC_REQUIRE(cni::fnv1a64({}) == 0xcbf29ce484222325ull);  // the offset basis
  // {"a"} hashes "a\0": the published FNV-1a 64 of "a" (0xaf63dc4c8601ec8c) times the prime.
  STATIC_REQUIRE(cni::fnv1a64({"a"}) == 0x089be207b544f1e4ull);
  STATIC_REQUIRE(cni::fnv1a64({"ab", "c"}) == 0xad22872f536e4705ull);
  STATIC_REQUIRE(cni::fnv1a64({"a", "bc"}) == 0x401801fc84f3ca79ull);
}

TEST_CASE("hash: FNV-1a 64 of raw bytes, the published vectors", "[hash]") {
  STATIC_REQUIRE(cni::fnv1a64_bytes("") == 0xcbf29ce484222325ull);
  STATIC_REQUIRE(cni::fnv1a64_bytes("a") == 0xaf63dc4c8601ec8cull);
  STATIC_REQUIRE(cni::fnv1a64_bytes("foobar") == 0x85944171f73967e8ull);
  // The framed hash is the raw one over each part and its NUL.
  STATIC_REQUIRE(cni::fnv1a64({"ab", "c"}) == cni::fnv1a64_bytes(std::string_view("ab\0c\0", 5)));
}

TEST_CASE("hash: derived names are stable and sized", "[hash]") {
  STATIC_REQUIRE(cni::stable_hash64({"net", "cid"}) == 0x327c90fdd9297987ull);
  CHECK(cni::hashed_name("st", {"net", "cid"}, 11) == "st7897929ddf0");
  CHECK(cni::hashed_name("st", {"net", "cid"}, 11).size() == 13);
  CHECK(cni::hashed_name("st", {"net", "cid2"}, 11) != cni::hashed_name("st", {"net", "cid"}, 11));
  CHECK(cni::hashed_name("x", {"a"}, 40).size() == 17);  // at most 16 digits
}
