#include <catch2/catch.hpp>
#include <stdexcept>

#include "libcni/iface/temp_link.h"
#include "libcni/protocol/env.h"

namespace {

cni::Env attachment(const std::string& cid, const std::string& ifname) {
  cni::Env env;
  env.container_id = cid;
  env.ifname = ifname;
  env.netns = "/run/netns/p";
  return env;
}

}  // namespace

// Pinned: a DEL must derive the name an older ADD left. Computed independently in Python as
// prefix + hex nibbles (low first) of splitmix64-finished FNV-1a 64 over "ctr1\0eth0\0"
// (libcni/core/hash.h).
TEST_CASE("temp_link_name: prefix plus the attachment's stable hash, 15 bytes",
          "[iface][temp-link]") {
  CHECK(cni::temp_link_name("mv", attachment("ctr1", "eth0")) == "mv1593d0a32049b");
  CHECK(cni::temp_link_name("mv", attachment("ctr1", "net1")) == "mvea1c09192a3ee");
  CHECK(cni::temp_link_name("veth", attachment("ctr1", "eth0")) == "veth1593d0a3204");
  // Only the attachment counts, not the netns.
  cni::Env other = attachment("ctr1", "eth0");
  other.netns = "/run/netns/q";
  CHECK(cni::temp_link_name("mv", other) == "mv1593d0a32049b");
  CHECK(cni::temp_link_name("mv", attachment("ctr2", "eth0")) !=
        cni::temp_link_name("mv", attachment("ctr1", "eth0")));
  CHECK(cni::temp_link_name("abcdefghijk", attachment("c", "e")).size() == 15);
  CHECK_THROWS_AS(cni::temp_link_name("abcdefghijkl", attachment("c", "e")), std::invalid_argument);
}
