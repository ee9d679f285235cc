#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <optional>
#include <string>

#include "libcni/core/ip.h"
#include "libcni/kernel/devlink.h"
#include "libcni/kernel/ipip_link.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/representor.h"
#include "libcni/kernel/vf.h"
#include "test/support/kernel_fixture.h"

// The SR-IOV and ipip verbs on this machine's kernel, which has neither VFs, devlink, ipip
// nor netdevsim: what can be proven here is how each fails (the error names the device and
// the setting) and that a device without VFs reads as one. The verbs doing their work are
// proven in the VM (test/vm/kernel_verbs_test.cpp, ctest "vm: kernel verbs").

using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

std::string thrown(const std::function<void()>& fn, int* sys_errno = nullptr) {
  try {
    fn();
  } catch (const cni::NetlinkError& e) {
    if (sys_errno) *sys_errno = e.sys_errno();
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("VF verbs: a device without VFs has none, and refuses VF settings by name",
          "[kernel][vf]") {
  KernelNs ns("vf");
  const std::string pf = unique_name("pf");
  cni::create_veth(ns.sock, {.name = pf, .peer_name = unique_name("pp")});
  const cni::LinkInfo link = cni::get_link(ns.sock, pf);

  CHECK(cni::list_vfs(ns.sock, pf).empty());
  CHECK(cni::list_vfs(ns.sock, link.index).empty());
  CHECK(cni::find_vf(ns.sock, pf, 0) == std::nullopt);

  // veth has no ndo_set_vf_*: each setting fails on its own, named.
  int err = 0;
  CHECK(thrown([&] { cni::set_vf(ns.sock, pf, 2, {.trust = true}); }, &err) ==
        "failed to set trust on of VF 2 of PF \"" + pf + "\": Operation not supported");
  CHECK(err == EOPNOTSUPP);
  CHECK(thrown([&] {
          cni::set_vf(ns.sock, link.index, 0,
                      {.vlan = cni::VfVlan{.vlan = 10, .qos = 0, .proto = cni::kVlanProto8021Q}});
        }).rfind("failed to set vlan 10 qos 0 proto 802.1Q of VF 0 of PF index ", 0) == 0);

  // The first failing setting stops the rest.
  CHECK(thrown([&] {
          cni::set_vf(ns.sock, pf, 0,
                      {.mac = cni::MacAddress::parse("02:00:00:00:00:01"), .spoofchk = false});
        }).rfind("failed to set MAC 02:00:00:00:00:01 of VF 0", 0) == 0);

  // No representors without a switch id.
  CHECK(link.phys_switch_id.empty());
  CHECK(link.phys_port_name.empty());
  CHECK(cni::list_vf_representors(ns.sock, link).empty());
}

TEST_CASE("VF verbs: a missing PF is ENODEV naming it", "[kernel][vf]") {
  KernelNs ns("vf");
  int err = 0;
  CHECK(thrown([&] { cni::list_vfs(ns.sock, "nosuchpf0"); }, &err) ==
        "failed to read the VFs of PF \"nosuchpf0\": No such device");
  CHECK(err == ENODEV);
}

TEST_CASE("ipip verbs on a kernel without ipip: find nothing, fail by name", "[kernel][ipip]") {
  KernelNs ns("ip");
  CHECK(cni::find_ipip_fallback(ns.sock) == std::nullopt);
  CHECK(cni::find_ipip(ns.sock, "lo") == std::nullopt);  // not an ipip device
  CHECK(cni::find_ipip(ns.sock, "tunl0") == std::nullopt);
  int err = 0;
  CHECK(thrown([&] { cni::configure_ipip_fallback(ns.sock, {.mtu = 1480}); }, &err) ==
        "ipip fallback device \"tunl0\" not found in this netns (is the ipip module loaded?): "
        "No such device");
  CHECK(err == ENODEV);
  const std::string name = unique_name("tun");
  CHECK(thrown([&] {
          cni::create_ipip(ns.sock, {.name = name, .remote = cni::IpAddress::parse("192.0.2.2")});
        }).rfind("failed to create ipip link \"" + name + "\": ", 0) == 0);
  CHECK_FALSE(cni::find_link(ns.sock, name).has_value());
  CHECK_THROWS_AS(
      cni::create_ipip(ns.sock, {.name = name, .local = cni::IpAddress::parse("2001:db8::1")}),
      std::invalid_argument);
  CHECK_THROWS_WITH(cni::create_ipip(ns.sock, {.name = name, .ttl = 64, .pmtudisc = false}),
                    Catch::Contains("ttl 64 and no path MTU discovery are incompatible"));
}

TEST_CASE("devlink: a missing family or instance fails by name", "[kernel][devlink]") {
  // This machine's kernel has no devlink at all; a kernel with it has no such instance.
  std::optional<cni::Devlink> devlink;
  try {
    devlink.emplace();
  } catch (const cni::NetlinkError& e) {
    CHECK_THAT(e.what(),
               Catch::StartsWith("failed to find the generic netlink family \"devlink\": "));
    return;
  }
  CHECK_THROWS_WITH(
      devlink->eswitch_mode({"netdevsim", "netdevsim99999"}),
      Catch::StartsWith("failed to read the eswitch mode of netdevsim/netdevsim99999: "));
}
