// netns_id (RTM_GETNSID): the id one namespace gives another is the one its links name.
#include <catch2/catch.hpp>
#include <string>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netns_id.h"
#include "test/support/kernel_fixture.h"

using strait::test::KernelNs;
using strait::test::unique_name;

TEST_CASE("netns_id is the id a link with its peer there names", "[kernel][netns]") {
  KernelNs a("ia");
  KernelNs b("ib");
  KernelNs c("ic");
  // Before any link joins them, a has no id for b.
  CHECK_FALSE(cni::netns_id(a.sock, b.handle).has_value());
  const std::string name = unique_name("ie");
  cni::create_veth(a.sock, {.name = name, .peer_name = unique_name("ip"), .peer_netns_fd = b.fd()});
  const cni::LinkInfo link = cni::get_link(a.sock, name);
  REQUIRE(link.link_netnsid.has_value());
  const auto id = cni::netns_id(a.sock, b.handle);
  REQUIRE(id.has_value());
  CHECK(*id == *link.link_netnsid);
  CHECK(cni::netns_id(a.sock, c.handle) != id);
}
