#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "ipam/global/file_store.h"
#include "ipam/global/nodes.h"
#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

// The ipip plugin on Debian's kernel inside the VM (ctest "vm: ipip": scripts/vm --modules
// ipip, which makes tunl0 in every netns): three node netns on an underlay bridge
// (test/support/overlay_lab.h), pods attached through cnitool inside each node, global-ipam on
// a shared file store, routes from `ipip sync`. ipipMode always: every pod pings every other
// across nodes, the pod MTU is 1480 (DF at 1480 passes, 1481 does not), and a removed node's
// routes go at the next sync. crossSubnet, with the third node on a second underlay subnet
// behind the underlay netns as router: its peer on the same subnet is routed directly, the
// other through tunl0, and both ping. One boot for all (TCG is slow): IPv4 pools only.
namespace {

using strait::test::LabPod;
using strait::test::OverlayLab;
using strait::test::OverlayLabOptions;
using strait::test::sh;
using strait::test::sh_ok;

OverlayLabOptions ipip_lab(const std::string& extra = "", int second_subnet_from = -1) {
  OverlayLabOptions o;
  o.plugin = "ipip";
  o.dual_stack = false;
  o.vxlan_extra = extra;
  o.second_subnet_from = second_subnet_from;
  return o;
}

// ping -c 1 with DF and a payload size: -s 1452 is a 1480-byte IPv4 packet.
bool ping(const strait::test::TempNetns& from, const std::string& ip, int payload = 56) {
  return sh("ip netns exec " + from.name() + " ping -c 1 -W 5 -M do -s " + std::to_string(payload) +
            " " + ip + " >/dev/null 2>&1") == 0;
}

std::string routes(const OverlayLab& lab, int node) {
  return sh_ok("ip -n " + lab.node(node).name() + " route show proto 157");
}

// One pod per node, every node synced.
std::vector<LabPod> pod_per_node(OverlayLab& lab) {
  std::vector<LabPod> pods;
  for (int n = 0; n < lab.size(); ++n) pods.push_back(lab.add_pod(n));
  lab.sync_all();
  return pods;
}

std::string block_of(const LabPod& p) {
  return cni::IpNet{cni::IpAddress::parse(p.v4), 30}.network().str();
}

}  // namespace

TEST_CASE("vm ipip: three nodes, always: pods talk across nodes at MTU 1480, sync follows",
          "[ipip][plugin]") {
  OverlayLab lab(ipip_lab());
  {
    // A first ADD that fails after the node side was made (global-ipam refuses an IP= outside
    // its pools) leaves tunl0 without the tunnel address it released, and no route.
    strait::test::TempNetns pod{"ipf"};
    CHECK(lab.cnitool(0, "add", pod.path(), "CNI_ARGS=IP=10.99.0.5 ").exit_code != 0);
    CHECK(sh_ok("ip -n " + lab.node(0).name() + " -o addr show tunl0").find("inet ") ==
          std::string::npos);
    CHECK(routes(lab, 0).empty());
  }
  std::vector<LabPod> pods = pod_per_node(lab);
  for (int n = 0; n < 3; ++n) {
    const std::string tunl0 = sh_ok("ip -n " + lab.node(n).name() + " -o addr show tunl0");
    INFO(tunl0);
    CHECK(sh_ok("ip -n " + lab.node(n).name() + " -o link show tunl0").find("mtu 1480") !=
          std::string::npos);
    CHECK(tunl0.find("inet 10.244.0.") != std::string::npos);  // the tunnel address
    const std::string r = routes(lab, n);
    INFO("node " << n << " routes:\n" << r);
    for (int m = 0; m < 3; ++m) {
      if (m == n) continue;
      CHECK(r.find(block_of(pods[m]) + " via " + lab.node_address(m) + " dev tunl0") !=
            std::string::npos);
    }
    CHECK(r.find("blackhole " + block_of(pods[n])) != std::string::npos);
  }
  CHECK(sh_ok("ip -n " + pods[0].ns->name() + " -o link show eth0").find("mtu 1480") !=
        std::string::npos);

  for (const auto& a : pods) {
    for (const auto& b : pods) {
      if (a.node == b.node) continue;
      INFO("pod on node " << a.node << " -> " << b.v4 << " on node " << b.node);
      CHECK(ping(*a.ns, b.v4));
    }
    INFO("node 0 -> pod on node " << a.node);
    CHECK(ping(lab.node(0), a.v4));  // sourced from tunl0's address
  }
  // 1480 bytes with DF: 1452 of ICMP payload + 8 + 20; one byte more does not leave the pod.
  CHECK(ping(*pods[0].ns, pods[2].v4, 1452));
  CHECK_FALSE(ping(*pods[0].ns, pods[2].v4, 1453));
  CHECK(lab.sync(0).find(" 0 writes") != std::string::npos);

  // Node 2 goes: its pod deleted, its record removed; the next sync elsewhere drops its block.
  lab.del_pod(pods[2]);
  {
    ipam::FileStore store(lab.store_path(), std::chrono::seconds(5));
    CHECK(ipam::nodes::remove(store, lab.node_name(2)));
  }
  lab.sync(0);
  lab.sync(1);
  for (int n = 0; n < 2; ++n) {
    const std::string r = routes(lab, n);
    INFO("node " << n << " routes after node 2 left:\n" << r);
    CHECK(r.find(lab.node_address(2)) == std::string::npos);
  }
  CHECK(ping(*pods[0].ns, pods[1].v4));
}

TEST_CASE("vm ipip: crossSubnet routes same-subnet peers directly and others through tunl0",
          "[ipip][plugin]") {
  OverlayLab lab(ipip_lab(",\"ipipMode\": \"crossSubnet\"", /*second_subnet_from=*/2));
  std::vector<LabPod> pods = pod_per_node(lab);
  const std::string r0 = routes(lab, 0);
  INFO("node 0 routes:\n" << r0);
  // Node 1 shares 192.0.2.0/24: via its underlay address on eth0, no tunnel.
  CHECK(r0.find(block_of(pods[1]) + " via 192.0.2.11 dev eth0") != std::string::npos);
  // Node 2 is on 198.51.100.0/24, behind the router: through tunl0.
  CHECK(r0.find(block_of(pods[2]) + " via 198.51.100.12 dev tunl0") != std::string::npos);
  const std::string r2 = routes(lab, 2);
  INFO("node 2 routes:\n" << r2);
  CHECK(r2.find(block_of(pods[0]) + " via 192.0.2.10 dev tunl0") != std::string::npos);
  for (const auto& a : pods) {
    for (const auto& b : pods) {
      if (a.node == b.node) continue;
      INFO("pod on node " << a.node << " -> " << b.v4 << " on node " << b.node);
      CHECK(ping(*a.ns, b.v4));
    }
  }
  // The same-subnet path is unencapsulated: 1480 passes either way (the pod MTU stays 1480).
  CHECK(ping(*pods[0].ns, pods[1].v4, 1452));
  CHECK(ping(*pods[0].ns, pods[2].v4, 1452));
}
