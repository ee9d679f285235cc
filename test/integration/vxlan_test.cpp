#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/config.h"
#include "ipam/global/etcd_store.h"
#include "ipam/global/file_store.h"
#include "ipam/global/nodes.h"
#include "ipam/global/records.h"
#include "libcni/kernel/netns.h"
#include "plugins/vxlan/vxlan_config.h"
#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

// The vxlan overlay end to end: node netns on an underlay bridge, pods attached from inside
// each node through cnitool, global-ipam on a shared file store and on etcd, the route agent
// run as `vxlan sync` inside each node. test/support/overlay_lab.h builds the lab.
namespace {

using nlohmann::json;
using strait::test::LabPod;
using strait::test::OverlayLab;
using strait::test::OverlayLabOptions;
using strait::test::sh;
using strait::test::sh_ok;

bool ping(const strait::test::TempNetns& from, const std::string& ip,
          const std::string& extra = "") {
  const std::string cmd = ip.find(':') == std::string::npos ? "ping" : "ping -6";
  return sh("ip netns exec " + from.name() + " " + cmd + " -c 1 -W 2 " + extra + " " + ip +
            " >/dev/null 2>&1") == 0;
}

std::string routes(const OverlayLab& lab, int node) {
  return sh_ok("ip -n " + lab.node(node).name() + " route show proto 157; ip -n " +
               lab.node(node).name() + " -6 route show proto 157");
}

// The block of a pod address, as the lab's pools cut them (/30, /126).
std::string block_of(const std::string& ip) {
  if (ip.find(':') == std::string::npos) {
    auto net = cni::IpNet{cni::IpAddress::parse(ip), 30}.network();
    return net.str();
  }
  auto net = cni::IpNet{cni::IpAddress::parse(ip), 126}.network();
  return net.str();
}

void every_pod_pings_every_pod(const std::vector<const LabPod*>& pods) {
  for (const LabPod* a : pods) {
    for (const LabPod* b : pods) {
      if (a == b) continue;
      INFO("pod on node " << a->node << " -> pod on node " << b->node << " " << b->v4 << " "
                          << b->v6);
      CHECK(ping(*a->ns, b->v4));
      CHECK(ping(*a->ns, b->v6));
    }
  }
}

void multi_node(bool etcd) {
  OverlayLabOptions o;
  o.etcd = etcd;
  OverlayLab lab(o);
  std::vector<LabPod> pods;
  for (int n = 0; n < 3; ++n) {
    pods.push_back(lab.add_pod(n));
    pods.push_back(lab.add_pod(n));
  }
  lab.sync_all();
  std::vector<const LabPod*> all;
  for (const auto& p : pods) all.push_back(&p);

  SECTION("every pod reaches every pod, on its node and across nodes, IPv4 and IPv6") {
    every_pod_pings_every_pod(all);
    // The nodes reach their own pods and the other nodes' pods.
    for (int n = 0; n < 3; ++n) {
      for (const auto& p : pods) {
        INFO("node " << n << " -> pod on node " << p.node << " " << p.v4);
        CHECK(ping(lab.node(n), p.v4));
        CHECK(ping(lab.node(n), p.v6));
      }
    }
    // A second pass changes nothing.
    CHECK(lab.sync(0).find(" 0 writes") != std::string::npos);
  }

  SECTION("a packet of the pod MTU passes with DF set and one byte more does not") {
    // 1500 - 50 = 1450: 1422 bytes of ICMP payload + 8 ICMP + 20 IPv4.
    const LabPod& a = pods[0];
    const LabPod& b = pods[2];
    CHECK(sh_ok("ip -n " + a.ns->name() + " -o link show eth0").find("mtu 1450") !=
          std::string::npos);
    CHECK(ping(*a.ns, b.v4, "-M do -s 1422"));
    CHECK_FALSE(ping(*a.ns, b.v4, "-M do -s 1423"));
  }

  SECTION("a borrowed address is reachable from the third node") {
    // Node 0's /30 holds its tunnel address and two pods; a third pod fills it, and with
    // maxBlocksPerNode 1 the fourth borrows from another node's block.
    pods.push_back(lab.add_pod(0));
    LabPod borrowed = lab.add_pod(0);
    const std::string r0 = routes(lab, 0);
    INFO("node 0's routes:\n" << r0);
    CHECK(r0.find("blackhole " + block_of(pods[0].v4)) != std::string::npos);
    lab.sync_all();
    // Whose block it came from: a block affine to node 1 or 2.
    const std::string b = block_of(borrowed.v4);
    CHECK(r0.find("blackhole " + b) == std::string::npos);
    for (int n = 1; n < 3; ++n) {
      const std::string r = routes(lab, n);
      INFO("node " << n << " routes:\n" << r);
      CHECK(r.find(borrowed.v4 + " via") != std::string::npos);
    }
    for (int n = 1; n < 3; ++n) {
      for (const auto& p : pods) {
        if (p.node != n) continue;
        INFO("pod on node " << n << " -> borrowed " << borrowed.v4 << " / " << borrowed.v6);
        CHECK(ping(*p.ns, borrowed.v4));
        CHECK(ping(*p.ns, borrowed.v6));
      }
    }
  }

  SECTION("a removed node's routes go away at the next sync elsewhere") {
    for (const auto& p : pods) {
      if (p.node == 2) lab.del_pod(p);
    }
    const std::string blk = block_of(pods[4].v4);
    CHECK(routes(lab, 0).find(blk + " via") != std::string::npos);
    // Its record removed, as an operator (or the node's decommissioning) does.
    if (etcd) {
      ipam::EtcdOptions eo;
      eo.endpoints = lab.etcd_endpoints();
      eo.prefix = "/" + lab.network();
      cni::Netns ul = cni::Netns::open(lab.underlay().path());
      cni::NetnsGuard in(ul);
      ipam::EtcdStore store(eo);
      CHECK(ipam::nodes::remove(store, lab.node_name(2)));
    } else {
      ipam::FileStore store(lab.store_path(), std::chrono::seconds(5));
      CHECK(ipam::nodes::remove(store, lab.node_name(2)));
    }
    lab.sync(0);
    lab.sync(1);
    for (int n = 0; n < 2; ++n) {
      const std::string r = routes(lab, n);
      INFO("node " << n << " routes:\n" << r);
      CHECK(r.find(blk) == std::string::npos);
      const std::string neigh =
          sh_ok("ip -n " + lab.node(n).name() + " neigh show dev strait.vxlan");
      CHECK(neigh.find(vxlan::vtep_mac(lab.node_name(2), "strait.vxlan").str()) ==
            std::string::npos);
      const std::string fdb =
          sh_ok("ip netns exec " + lab.node(n).name() + " bridge fdb show dev strait.vxlan");
      CHECK(fdb.find("dst " + lab.node_address(2)) == std::string::npos);
    }
    // The others still talk.
    every_pod_pings_every_pod({&pods[0], &pods[1], &pods[2], &pods[3]});
  }
}

}  // namespace

TEST_CASE("vxlan: three nodes on a file store", "[vxlan][multinode]") { multi_node(false); }

TEST_CASE("vxlan: three nodes on etcd", "[vxlan][multinode][etcd]") { multi_node(true); }
