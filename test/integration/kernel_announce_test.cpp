#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/icmp6.h>
#include <netinet/ip6.h>
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "libcni/core/error.h"
#include "libcni/core/fd.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/garp.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/sysctl.h"
#include "test/support/kernel_fixture.h"

using cni::IpAddress;
using cni::IpNet;
using cni::MacAddress;
using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

using Frame = std::vector<uint8_t>;

// Frames arriving on one interface, read with an AF_PACKET socket (opened inside the
// interface's netns; the socket stays there).
class Capture {
 public:
  Capture(const cni::Netns& ns, int ifindex) {
    cni::NetnsGuard guard(ns);
    fd_.reset(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    if (!fd_) throw std::system_error(errno, std::system_category(), "AF_PACKET socket");
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_ALL);
    at.sll_ifindex = ifindex;
    if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
      throw std::system_error(errno, std::system_category(), "bind AF_PACKET");
    }
  }
  // The first incoming frame `match` accepts, waiting at most 3 s.
  std::optional<Frame> wait_for(const std::function<bool(const Frame&)>& match) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      Frame f(2048);
      sockaddr_ll from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          recvfrom(fd_.get(), f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING) continue;
      f.resize(static_cast<size_t>(n));
      if (match(f)) return f;
    }
    return std::nullopt;
  }

 private:
  cni::UniqueFd fd_;
};

uint16_t be16(const Frame& f, size_t at) { return static_cast<uint16_t>((f[at] << 8) | f[at + 1]); }

// Two namespaces joined by a veth pair, both ends up.
struct Pair {
  KernelNs a{"an"};
  KernelNs b{"anp"};
  std::string dev = unique_name("an");
  std::string peer = dev + "p";
  cni::LinkInfo la, lb;
  Pair() {
    cni::create_veth(a.sock, {.name = dev,
                              .peer_name = peer,
                              .mac = MacAddress::parse("02:00:00:00:aa:01"),
                              .peer_netns_fd = b.fd()});
    cni::set_link_up(a.sock, dev);
    cni::set_link_up(b.sock, peer);
    la = cni::get_link(a.sock, dev);
    lb = cni::get_link(b.sock, peer);
  }
};

}  // namespace

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

TEST_CASE("send_gratuitous_arp announces the address to the peer", "[kernel][garp]") {
  Pair p;
  const auto ip = IpAddress::parse("192.0.2.10");
  const auto mac = MacAddress::parse(p.la.mac);
  cni::add_address(p.a.sock, p.dev, IpNet::parse("192.0.2.10/24"));
  cni::add_address(p.b.sock, p.peer, IpNet::parse("192.0.2.20/24"));
  // Let the peer learn from gratuitous ARP, for the second, independent check.
  {
    cni::NetnsGuard guard(p.b.handle);
    cni::write_sysctl("net/ipv4/conf/" + p.peer + "/arp_accept", "1");
  }
  Capture cap(p.b.handle, p.lb.index);
  {
    cni::NetnsGuard guard(p.a.handle);
    cni::send_gratuitous_arp(p.la.index, p.dev, mac, ip);
  }
  auto frame = cap.wait_for([](const Frame& f) {
    return f.size() >= 42 && be16(f, 12) == ETH_P_ARP && be16(f, 20) == 1 &&
           std::memcmp(&f[28], "\xc0\x00\x02\x0a", 4) == 0;
  });
  REQUIRE(frame.has_value());
  const Frame& f = *frame;
  CHECK(std::memcmp(&f[0], "\xff\xff\xff\xff\xff\xff", 6) == 0);  // broadcast
  CHECK(std::memcmp(&f[6], mac.data(), 6) == 0);                  // from our MAC
  CHECK(be16(f, 14) == 1);                                        // Ethernet
  CHECK(be16(f, 16) == ETH_P_IP);
  CHECK(std::memcmp(&f[22], mac.data(), 6) == 0);  // sender MAC
  CHECK(std::memcmp(&f[28], ip.data(), 4) == 0);   // sender IP
  CHECK(std::memcmp(&f[38], ip.data(), 4) == 0);   // target IP = sender IP

  const auto neigh = p.b.ip("neigh show dev " + p.peer);
  bool learned = false;
  for (const auto& n : neigh) {
    if (n.at("dst") == "192.0.2.10" && n.value("lladdr", "") == p.la.mac) learned = true;
  }
  CHECK(learned);
}

TEST_CASE("send_unsolicited_na announces the IPv6 address to the peer", "[kernel][garp]") {
  Pair p;
  const auto ip = IpAddress::parse("2001:db8::10");
  const auto mac = MacAddress::parse(p.la.mac);
  cni::add_address(p.a.sock, p.dev, IpNet::parse("2001:db8::10/64"), {.nodad = true});
  Capture cap(p.b.handle, p.lb.index);
  {
    cni::NetnsGuard guard(p.a.handle);
    cni::send_unsolicited_na(p.la.index, p.dev, mac, ip);
  }
  // Ethernet (14) + IPv6 (40) + NA (24) + option (8).
  auto frame = cap.wait_for([&](const Frame& f) {
    return f.size() >= 86 && be16(f, 12) == ETH_P_IPV6 && f[20] == IPPROTO_ICMPV6 &&
           f[54] == ND_NEIGHBOR_ADVERT && std::memcmp(&f[62], ip.data(), 16) == 0;
  });
  REQUIRE(frame.has_value());
  const Frame& f = *frame;
  CHECK(std::memcmp(&f[0], "\x33\x33\x00\x00\x00\x01", 6) == 0);  // ff02::1 multicast MAC
  CHECK(f[21] == 255);                                            // hop limit
  CHECK(std::memcmp(&f[22], ip.data(), 16) == 0);                 // sent from the address
  const uint8_t flags = f[58];
  CHECK((flags & 0x20) != 0);  // override
  CHECK((flags & 0x40) == 0);  // not solicited
  CHECK((flags & 0x80) == 0);  // not a router
  CHECK(f[78] == ND_OPT_TARGET_LINKADDR);
  CHECK(f[79] == 1);
  CHECK(std::memcmp(&f[80], mac.data(), 6) == 0);
}

TEST_CASE("announcement errors name the interface", "[kernel][garp]") {
  KernelNs a("ae");
  const std::string dev = unique_name("ae");
  cni::create_veth(a.sock, {.name = dev, .peer_name = dev + "p"});
  const cni::LinkInfo l = cni::get_link(a.sock, dev);  // down
  cni::NetnsGuard guard(a.handle);
  try {
    cni::send_gratuitous_arp(l.index, dev, MacAddress::parse(l.mac), IpAddress::parse("192.0.2.9"));
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENETDOWN);
    CHECK(std::string(e.what()) ==
          "failed to send gratuitous ARP for 192.0.2.9 on \"" + dev + "\": Network is down");
  }
  CHECK_THROWS_AS(cni::send_gratuitous_arp(l.index, dev, MacAddress(), IpAddress::parse("::1")),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      cni::send_unsolicited_na(l.index, dev, MacAddress(), IpAddress::parse("10.0.0.1")),
      std::invalid_argument);
}
