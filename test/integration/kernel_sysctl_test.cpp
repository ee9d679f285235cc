#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/sysctl.h"
#include "test/support/kernel_fixture.h"

using strait::test::KernelNs;
using strait::test::unique_name;

TEST_CASE("sysctl read and write follow the netns", "[kernel][sysctl]") {
  KernelNs a("sy");
  // A VLAN-style name with a dot, to exercise dotted keys too.
  const std::string dev = unique_name("sy", 13) + ".5";
  cni::create_veth(a.sock, {.name = dev, .peer_name = unique_name("syp")});
  const std::string key = "net/ipv4/conf/" + dev + "/arp_notify";
  {
    cni::NetnsGuard guard(a.handle);
    CHECK(cni::read_sysctl(key) == "0");
    cni::write_sysctl(key, "1");
    CHECK(cni::read_sysctl(key) == "1");
    // Dotted spelling: the dot inside the device name becomes '/'.
    std::string dotted = dev;
    std::replace(dotted.begin(), dotted.end(), '.', '/');
    CHECK(cni::read_sysctl("net.ipv6.conf." + dotted + ".ndisc_notify") == "0");
    cni::write_sysctl("net.ipv6.conf." + dotted + ".ndisc_notify", "1");
  }
  CHECK(a.ns.exec("cat /proc/sys/net/ipv4/conf/" + dev + "/arp_notify") == "1\n");
  CHECK(a.ns.exec("cat /proc/sys/net/ipv6/conf/" + dev + "/ndisc_notify") == "1\n");
  // Back in the original netns the device does not exist (read-only check).
  try {
    cni::read_sysctl(key);
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()) ==
          "failed to read sysctl \"" + key + "\": No such file or directory");
  }
  {
    cni::NetnsGuard guard(a.handle);
    CHECK_THROWS_AS(cni::write_sysctl("../../etc/hostname", "x"), cni::Error);
    CHECK_THROWS_AS(cni::read_sysctl("net/../../../etc/hostname"), cni::Error);
    CHECK_THROWS_AS(cni::read_sysctl("/proc/sys/net/ipv4/ip_forward"), cni::Error);
  }
}
