#include "libcni/kernel/netlink.h"

#include <netlink/addr.h>
#include <netlink/errno.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <string>

using cni::IpAddress;
using cni::IpNet;
using cni::NetlinkError;

TEST_CASE("NetlinkError names the object and gives the errno text", "[netlink]") {
  NetlinkError e("failed to add route 10.1.0.0/27 via 192.0.2.2 dev eth0", -NLE_FAILURE,
                 ENETUNREACH);
  CHECK(std::string(e.what()) ==
        "failed to add route 10.1.0.0/27 via 192.0.2.2 dev eth0: Network is unreachable");
  CHECK(e.sys_errno() == ENETUNREACH);
  CHECK(e.nl_error() == NLE_FAILURE);
  CHECK(e.code() == std::errc::network_unreachable);

  NetlinkError with_ack("failed to add route x", -NLE_INVAL, EINVAL, "Invalid prefix");
  CHECK(std::string(with_ack.what()) == "failed to add route x: Invalid argument (Invalid prefix)");
  CHECK(with_ack.kernel_message() == "Invalid prefix");

  // No kernel errno: derived from libnl's code when there is an equivalent...
  NetlinkError derived("failed to find link \"x\"", -NLE_NODEV);
  CHECK(std::string(derived.what()) == "failed to find link \"x\": No such device");
  CHECK(derived.sys_errno() == ENODEV);
  // ...else libnl's own text in the netlink category.
  NetlinkError intr("failed to list links", -NLE_DUMP_INTR);
  CHECK(intr.sys_errno() == 0);
  CHECK(intr.code().category() == cni::netlink_category());
  CHECK(std::string(intr.what()) ==
        "failed to list links: Dump inconsistency detected, interrupted");
}

TEST_CASE("nl_error_to_errno", "[netlink]") {
  CHECK(cni::nl_error_to_errno(-NLE_EXIST) == EEXIST);
  CHECK(cni::nl_error_to_errno(NLE_EXIST) == EEXIST);
  CHECK(cni::nl_error_to_errno(-NLE_OBJ_NOTFOUND) == ENOENT);
  CHECK(cni::nl_error_to_errno(-NLE_NOADDR) == EADDRNOTAVAIL);
  CHECK(cni::nl_error_to_errno(-NLE_PARSE_ERR) == 0);
}

TEST_CASE("IpAddress and IpNet convert to nl_addr and back", "[netlink]") {
  for (const char* text : {"10.1.0.5/24", "192.0.2.0/27", "2001:db8::5/64", "::/0", "0.0.0.0/0"}) {
    INFO(text);
    const IpNet net = IpNet::parse(text);
    cni::NlAddrPtr a = cni::to_nl_addr(net);
    CHECK(nl_addr_get_family(a.get()) == net.ip.family());
    CHECK(static_cast<int>(nl_addr_get_prefixlen(a.get())) == net.prefix);
    CHECK(nl_addr_get_len(a.get()) == net.ip.size());
    CHECK(cni::ipnet_from_nl_addr(a.get()) == net);
  }
  const IpAddress ip = IpAddress::parse("2001:db8::1");
  cni::NlAddrPtr a = cni::to_nl_addr(ip);
  CHECK(nl_addr_get_prefixlen(a.get()) == 128);
  CHECK(cni::from_nl_addr(a.get()) == ip);
}

TEST_CASE("a zero-length nl_addr is the family's zero address", "[netlink]") {
  cni::NlAddrPtr empty(nl_addr_alloc(0));
  nl_addr_set_family(empty.get(), AF_INET6);
  CHECK(cni::ipnet_from_nl_addr(empty.get()) == IpNet::parse("::/0"));
  cni::NlAddrPtr llc(nl_addr_build(AF_LLC, "\x02\x00\x00\x00\x00\x01", 6));
  CHECK_FALSE(cni::from_nl_addr(llc.get()).has_value());
  CHECK_FALSE(cni::from_nl_addr(nullptr).has_value());
}
