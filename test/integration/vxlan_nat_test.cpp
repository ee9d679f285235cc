#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "libcni/core/fd.h"
#include "libcni/kernel/netns.h"
#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

// Outgoing NAT (natOutgoing, overlay/nat.h) in the multi-node vxlan lab: a "world" netns
// beyond the underlay netns, which routes between the nodes' subnet and the world's
// (192.0.2.0/24 and 2001:db8:1::/64 to 203.0.113.0/24 and 2001:db8:2::/64). The world has a
// route back to the nodes only, so a pod reaches it with an unmasqueraded source only once the
// test adds a route to the pods. The node's tables are read with `nft list` inside the node's
// netns; the machine's own nftables are never touched.
namespace {

using strait::test::LabPod;
using strait::test::OverlayLab;
using strait::test::OverlayLabOptions;
using strait::test::sh;
using strait::test::TempNetns;

constexpr int kPort = 8080;

bool ping(const TempNetns& from, const std::string& ip) {
  const std::string cmd = ip.find(':') == std::string::npos ? "ping" : "ping -6";
  return sh("ip netns exec " + from.name() + " " + cmd + " -c 1 -W 2 " + ip + " >/dev/null 2>&1") ==
         0;
}

sockaddr_storage sockaddr_of(const std::string& ip, int port) {
  sockaddr_storage ss{};
  if (ip.find(':') == std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    REQUIRE(inet_pton(AF_INET, ip.c_str(), &a->sin_addr) == 1);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    REQUIRE(inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) == 1);
  }
  return ss;
}

// A TCP listener bound to `ip` inside `ns` (the socket stays in that netns).
cni::UniqueFd listen_in(const TempNetns& ns, const std::string& ip) {
  const cni::Netns target = cni::Netns::open(ns.path());
  cni::NetnsGuard in(target);
  const sockaddr_storage ss = sockaddr_of(ip, kPort);
  cni::UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  REQUIRE(bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), sizeof ss) == 0);
  REQUIRE(listen(fd.get(), 4) == 0);
  return fd;
}

// Opens a TCP connection from inside `ns` to `ip` (the handshake completes in the listener's
// backlog) and returns the peer address the listener's accept() sees; nullopt when no
// connection came within 5 s.
std::optional<std::string> source_seen(const TempNetns& ns, const std::string& ip, int listener) {
  cni::UniqueFd c;
  {
    const cni::Netns target = cni::Netns::open(ns.path());
    cni::NetnsGuard in(target);
    const sockaddr_storage ss = sockaddr_of(ip, kPort);
    c = cni::UniqueFd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(c);
    timeval tv{5, 0};  // connect(2) gives up after this
    setsockopt(c.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c.get(), reinterpret_cast<const sockaddr*>(&ss), sizeof ss) != 0) {
      return std::nullopt;
    }
  }
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return std::nullopt;
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  const cni::UniqueFd a(accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  REQUIRE(a);
  char buf[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, buf, sizeof buf);
  }
  return std::string(buf);
}

std::string node_v6(int i) { return "2001:db8:1::" + std::to_string(10 + i); }

// The world netns beyond the lab's underlay netns (the router), and IPv6 on the underlay
// (the lab's nodes have IPv4 only there).
struct World {
  explicit World(const OverlayLab& lab) {
    const std::string peer = strait::test::unique_name("wlp");
    ns.exec("sysctl -qw net.ipv6.conf.default.accept_dad=0");
    strait::test::sh_ok("ip -n " + ns.name() + " link add eth0 type veth peer name " + peer +
                        " netns " + lab.underlay().name());
    lab.underlay().exec(
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 && "
        "ip addr add 2001:db8:1::1/64 dev br0 nodad && "
        "ip addr add 203.0.113.1/24 dev " +
        peer + " && ip addr add 2001:db8:2::1/64 dev " + peer + " nodad && ip link set " + peer +
        " up");
    ns.exec(
        "ip addr add 203.0.113.2/24 dev eth0 && ip addr add 2001:db8:2::2/64 dev eth0 nodad && "
        "ip link set eth0 up && ip link set lo up && "
        "ip route add 192.0.2.0/24 via 203.0.113.1 && "
        "ip -6 route add 2001:db8:1::/64 via 2001:db8:2::1");
    for (int i = 0; i < lab.size(); ++i) {
      lab.node(i).exec("ip addr add " + node_v6(i) +
                       "/64 dev eth0 nodad && ip -6 route add default via 2001:db8:1::1");
    }
  }
  // The route back to `pod` (through its node) that the world needs when its source is kept.
  void route_back(const OverlayLab& lab, const LabPod& pod) const {
    ns.exec(
        "ip route add 10.244.0.0/24 via 203.0.113.1 && "
        "ip -6 route add fd00:244::/120 via 2001:db8:2::1");
    lab.underlay().exec("ip route add " + pod.v4 + " via " + lab.node_address(pod.node) +
                        " && ip -6 route add " + pod.v6 + " via " + node_v6(pod.node));
  }
  TempNetns ns{"wld"};
  static constexpr const char* kV4 = "203.0.113.2";
  static constexpr const char* kV6 = "2001:db8:2::2";
};

std::string nft(const OverlayLab& lab, int node, const std::string& cmd) {
  std::string out;
  sh("ip netns exec " + lab.node(node).name() + " nft " + cmd + " 2>&1", &out);
  return out;
}

std::string tables(const OverlayLab& lab, int node) { return nft(lab, node, "list tables"); }

// A table no Strait code knows, with a rule and a counter: what a node's firewall may hold.
constexpr char kForeign[] =
    "add table inet strait-test-foreign; add chain inet strait-test-foreign forward { type "
    "filter hook forward priority 0; policy accept; }; add rule inet strait-test-foreign forward "
    "ip saddr 198.18.0.0/15 counter drop";

}  // namespace

TEST_CASE("vxlan: natOutgoing masquerades pod traffic to the world and nothing else",
          "[vxlan][nat][multinode]") {
  OverlayLabOptions o;
  o.nodes = 2;
  OverlayLab lab(o);
  World world(lab);
  const LabPod a = lab.add_pod(0);
  const LabPod b = lab.add_pod(1);
  strait::test::sh_ok("ip netns exec " + lab.node(0).name() + " nft '" + kForeign + "'");
  const std::string foreign = nft(lab, 0, "list table inet strait-test-foreign");
  REQUIRE(foreign.find("counter") != std::string::npos);

  // natOutgoing unset: true. The first pass makes both tables (one write each).
  const std::string first = lab.sync(0);
  INFO(first);
  CHECK(first.find(" 2 nat)") != std::string::npos);
  lab.sync(1);
  const std::string v4 = nft(lab, 0, "list table ip strait-nat");
  INFO(v4);
  CHECK(v4.find("ip daddr 10.244.0.0/24 return") != std::string::npos);
  CHECK(v4.find("ip saddr 10.244.0.0/24 masquerade") != std::string::npos);
  CHECK(nft(lab, 0, "list table ip6 strait-nat").find("ip6 saddr fd00:244::/120 masquerade") !=
        std::string::npos);

  // The pod reaches the world (masqueraded). The first packets may wait for neighbour
  // discovery on the new links: a readiness wait; every later check is a single try.
  REQUIRE(strait::test::eventually([&] { return ping(*a.ns, World::kV4); }));
  REQUIRE(strait::test::eventually([&] { return ping(*a.ns, World::kV6); }));

  SECTION("the world sees the node's address; pods across nodes see the pod's") {
    CHECK(ping(*a.ns, World::kV4));
    CHECK(ping(*a.ns, World::kV6));
    const cni::UniqueFd l4 = listen_in(world.ns, World::kV4);
    CHECK(source_seen(*a.ns, World::kV4, l4.get()) == lab.node_address(0));
    const cni::UniqueFd l6 = listen_in(world.ns, World::kV6);
    CHECK(source_seen(*a.ns, World::kV6, l6.get()) == node_v6(0));
    // Pod to pod across nodes, both directions.
    const cni::UniqueFd pb = listen_in(*b.ns, b.v4);
    CHECK(source_seen(*a.ns, b.v4, pb.get()) == a.v4);
    const cni::UniqueFd pa6 = listen_in(*a.ns, a.v6);
    CHECK(source_seen(*b.ns, a.v6, pa6.get()) == b.v6);
    // The node's own traffic to a remote pod (from its tunnel address) is not rewritten
    // either: it reaches the pod.
    CHECK(ping(lab.node(0), b.v4));
  }

  SECTION("the no-op pass writes nothing, nftables included") {
    const std::string again = lab.sync(0);
    INFO(again);
    CHECK(again.find(" 0 writes") != std::string::npos);
    CHECK(nft(lab, 0, "list table ip strait-nat") == v4);
  }

  SECTION("a table changed by hand is replaced whole at the next pass") {
    strait::test::sh_ok("ip netns exec " + lab.node(0).name() +
                        " nft add rule ip strait-nat postrouting ip saddr 10.9.0.0/16 accept");
    const std::string repair = lab.sync(0);
    INFO(repair);
    CHECK(repair.find(" 1 nat)") != std::string::npos);
    CHECK(nft(lab, 0, "list table ip strait-nat") == v4);
  }

  SECTION("natOutgoing false: the tables go, and the world sees the pod's address") {
    lab.set_nat_outgoing(false);
    const std::string off = lab.sync(0);
    INFO(off);
    CHECK(off.find(" 2 nat)") != std::string::npos);
    CHECK(tables(lab, 0).find("strait-nat") == std::string::npos);
    CHECK(lab.sync(0).find(" 0 writes") != std::string::npos);
    // Without a route back to the pods the world cannot answer: the source was not rewritten.
    CHECK_FALSE(ping(*a.ns, World::kV4));
    world.route_back(lab, a);
    CHECK(ping(*a.ns, World::kV4));
    const cni::UniqueFd l4 = listen_in(world.ns, World::kV4);
    CHECK(source_seen(*a.ns, World::kV4, l4.get()) == a.v4);
    const cni::UniqueFd l6 = listen_in(world.ns, World::kV6);
    CHECK(source_seen(*a.ns, World::kV6, l6.get()) == a.v6);
  }

  SECTION("natOutgoing true again after false: the tables come back") {
    lab.set_nat_outgoing(false);
    lab.sync(0);
    lab.set_nat_outgoing(true);
    CHECK(lab.sync(0).find(" 2 nat)") != std::string::npos);
    CHECK(nft(lab, 0, "list table ip strait-nat") == v4);
  }

  // Whatever the section did, the foreign table is as it was.
  CHECK(nft(lab, 0, "list table inet strait-test-foreign") == foreign);
}

TEST_CASE("vxlan: natOutgoing on the IPv4 pool only makes the ip table only",
          "[vxlan][nat][multinode]") {
  OverlayLabOptions o;
  o.nodes = 1;
  OverlayLab lab(o);
  lab.add_pod(0);
  nlohmann::json conf = lab.conf(0);
  lab.sync(0);
  CHECK(tables(lab, 0).find("table ip6 strait-nat") != std::string::npos);
  // The v6 pool turns natOutgoing off: its table goes, the ip one stays as it was.
  const std::string v4 = nft(lab, 0, "list table ip strait-nat");
  conf["plugins"][0]["ipam"]["pools"][1]["natOutgoing"] = false;
  std::ofstream(lab.conflist(0)) << conf.dump(2);
  const std::string out = lab.sync(0);
  INFO(out);
  CHECK(out.find(" 1 nat)") != std::string::npos);
  CHECK(tables(lab, 0).find("table ip6 strait-nat") == std::string::npos);
  CHECK(nft(lab, 0, "list table ip strait-nat") == v4);
}
