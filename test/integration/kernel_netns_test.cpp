#include <catch2/catch.hpp>
#include <cerrno>
#include <string>
#include <system_error>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "test/support/kernel_fixture.h"

using strait::test::KernelNs;
using strait::test::TempNetns;
using strait::test::thread_netns_inode;

TEST_CASE("Netns::open reports a missing path", "[kernel][netns]") {
  const std::string path = "/run/netns/" + strait::test::unique_name("strait-missing-", 40);
  try {
    cni::Netns::open(path);
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()) ==
          "failed to open netns \"" + path + "\": No such file or directory");
  }
  CHECK_FALSE(cni::Netns::try_open(path).has_value());
}

TEST_CASE("Netns::open refuses files that are not network namespaces", "[kernel][netns]") {
  // A regular file, and another namespace type on nsfs.
  for (const std::string path : {"/etc/hostname", "/proc/self/ns/mnt"}) {
    INFO(path);
    try {
      cni::Netns::open(path);
      FAIL("no error");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EINVAL);
      CHECK(std::string(e.what()).rfind(
                "failed to open netns \"" + path + "\": not a network namespace", 0) == 0);
    }
    // Only a missing path is "gone"; a wrong file is still an error.
    CHECK_THROWS_AS(cni::Netns::try_open(path), std::system_error);
  }
}

TEST_CASE("NetnsGuard enters a netns and returns to the original", "[kernel][netns]") {
  const ino_t before = thread_netns_inode();
  REQUIRE(before != 0);
  TempNetns a("ga");
  TempNetns b("gb");
  cni::Netns na = cni::Netns::open(a.path());
  cni::Netns nb = cni::Netns::open(b.path());
  CHECK(na.inode() != before);
  CHECK_FALSE(na.same_as(nb));
  {
    cni::NetnsGuard guard(na);
    CHECK(thread_netns_inode() == na.inode());
    CHECK(cni::Netns::current().same_as(na));
    {
      cni::NetnsGuard inner(nb);
      CHECK(thread_netns_inode() == nb.inode());
    }
    CHECK(thread_netns_inode() == na.inode());
  }
  CHECK(thread_netns_inode() == before);
  CHECK(cni::Netns::current().inode() == before);
  // try_open of an existing namespace opens it.
  auto again = cni::Netns::try_open(a.path());
  REQUIRE(again.has_value());
  CHECK(again->same_as(na));
}

TEST_CASE("an NlSocket stays bound to the netns it was opened in", "[kernel][netns]") {
  KernelNs a("sa");
  KernelNs b("sb");
  const ino_t before = thread_netns_inode();
  const std::string name = strait::test::unique_name("vs");
  // Both sockets were opened inside guards that have ended; this thread is back home.
  cni::create_veth(a.sock, {.name = name, .peer_name = name + "p"});
  CHECK(thread_netns_inode() == before);
  CHECK(cni::find_link(a.sock, name).has_value());
  CHECK_FALSE(cni::find_link(b.sock, name).has_value());
  CHECK(a.link(name).at("ifname") == name);
  std::string out;
  CHECK(strait::test::sh("ip netns exec " + b.ns.name() + " ip link show dev " + name, &out) != 0);
  // Read-only look at the machine's namespace: the link must not be there.
  CHECK(strait::test::sh("ip link show dev " + name, &out) != 0);
}
