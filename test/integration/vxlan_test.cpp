#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
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
#include "overlay/agent.h"
#include "plugins/vxlan/vxlan_config.h"
#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

// The vxlan overlay end to end: node netns on an underlay bridge, pods attached from inside
// each node through cnitool, global-ipam on a shared file store and on etcd, the route agent
// run as `vxlan sync` inside each node. test/support/overlay_lab.h builds the lab.
namespace {

using nlohmann::json;
using strait::test::eventually;
using strait::test::LabAgent;
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

// `fn` with the lab's store, as the test process reaches it (etcd listens in the underlay).
void with_store(const OverlayLab& lab, const std::function<void(ipam::KvStore&)>& fn) {
  if (lab.etcd()) {
    ipam::EtcdOptions eo;
    eo.endpoints = lab.etcd_endpoints();
    eo.prefix = "/" + lab.network();
    cni::Netns ul = cni::Netns::open(lab.underlay().path());
    cni::NetnsGuard in(ul);
    ipam::EtcdStore store(eo);
    fn(store);
  } else {
    ipam::FileStore store(lab.store_path(), std::chrono::seconds(5));
    fn(store);
  }
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

// Whether every one of `from` reaches `to` (IPv4 and IPv6), polled until `timeout`.
bool reachable_soon(const std::vector<const LabPod*>& from, const LabPod& to,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  return eventually(
      [&] {
        for (const LabPod* a : from) {
          if (!ping(*a->ns, to.v4) || !ping(*a->ns, to.v6)) return false;
        }
        return true;
      },
      timeout);
}

// The agents of nodes 0..n-1 with `args`, each waited for until its first pass is logged.
std::vector<std::unique_ptr<LabAgent>> start_agents(const OverlayLab& lab, int n,
                                                    const std::vector<std::string>& args) {
  std::vector<std::unique_ptr<LabAgent>> agents;
  for (int i = 0; i < n; ++i) agents.push_back(lab.start_agent(i, args));
  for (const auto& a : agents) {
    INFO(a->log());
    REQUIRE(eventually([&] { return a->count("sync: ") > 0; }));
  }
  return agents;
}

void multi_node(bool etcd) {
  OverlayLabOptions o;
  o.etcd = etcd;
  // A stopped etcd is found out within seconds (the agent's passes and watch wait this long).
  if (etcd) o.store_timeout_ms = 3000;
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
    with_store(lab,
               [&](ipam::KvStore& store) { CHECK(ipam::nodes::remove(store, lab.node_name(2))); });
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

  SECTION("--watch makes a new node's pod reachable without a manual sync") {
    // A periodic pass an hour away: only the watch can bring the new node in.
    auto agents = start_agents(lab, 3, {"--watch", "--interval", "3600", "--log-level", "debug"});
    const int n = lab.add_node();
    auto newcomer = lab.start_agent(n, {"--watch", "--interval", "3600"});
    LabPod p = lab.add_pod(n);
    INFO("agent 0:\n" << agents[0]->log());
    CHECK(reachable_soon({&pods[0], &pods[2], &pods[4]}, p));
    CHECK(reachable_soon({&p}, pods[1]));
    CHECK(agents[0]->count("the block table or the node records changed") > 0);
    // A burst of 50 writes (node 2's record rewritten as it is) is coalesced: one pass per
    // kMaxDebounce of burst at most, plus the one after it.
    const size_t passes = agents[0]->count("sync: ");
    const auto t0 = std::chrono::steady_clock::now();
    with_store(lab, [&](ipam::KvStore& store) {
      for (int k = 0; k < 50; ++k) {
        auto e = store.list("nodes/");
        for (const auto& rec : e) {
          if (rec.key.find(lab.node_name(2)) != std::string::npos) {
            REQUIRE(store.put_if(rec.key, rec.value, rec.revision));
          }
        }
      }
    });
    const auto burst = std::chrono::steady_clock::now() - t0;
    REQUIRE(eventually([&] { return agents[0]->count("sync: ") > passes; }));
    // Room for any further pass the burst would wrongly cause (a window, not a timing claim).
    std::this_thread::sleep_for(2 * overlay::kMaxDebounce);
    const size_t bound = 2 + static_cast<size_t>(burst / overlay::kMaxDebounce);
    CHECK(agents[0]->count("sync: ") - passes <= bound);
    // SIGTERM while watching: exit 0, and the routes stay.
    const std::string before = routes(lab, 0);
    CHECK(before.find(block_of(p.v4) + " via") != std::string::npos);
    for (auto& a : agents) CHECK(a->stop(SIGTERM) == 0);
    CHECK(newcomer->stop(SIGINT) == 0);
    CHECK(routes(lab, 0) == before);
    CHECK(ping(*pods[0].ns, p.v4));
  }

  SECTION("SIGTERM while waiting for the next pass exits 0 and keeps the kernel state") {
    const std::string before = routes(lab, 1);
    auto agent = lab.start_agent(1, {"--interval", "3600", "--log-level", "debug"});
    REQUIRE(eventually([&] { return agent->count("sync: ") > 0; }));
    CHECK(agent->stop(SIGTERM) == 0);
    INFO(agent->log());
    CHECK(agent->count("stopping on a signal") == 1);
    CHECK(routes(lab, 1) == before);
    every_pod_pings_every_pod(all);
  }

  if (etcd) {
    SECTION("etcd stopped: the agent keeps the routes, logs, and applies a change made meanwhile") {
      auto agents = start_agents(lab, 3, {"--watch", "--interval", "3600", "--log-level", "debug"});
      const std::string before = routes(lab, 0);
      lab.etcd_cluster().stop(0);
      INFO("agent 0:\n" << agents[0]->log());
      CHECK(eventually([&] { return agents[0]->count("failed") > 0; }, std::chrono::seconds(30)));
      CHECK(routes(lab, 0) == before);
      CHECK(ping(*pods[0].ns, pods[2].v4));
      lab.etcd_cluster().start(0);
      lab.etcd_cluster().wait_ready();
      // A node (and its pod) that comes while the agents may still be backing off.
      const int n = lab.add_node();
      auto newcomer = lab.start_agent(n, {"--watch", "--interval", "3600"});
      LabPod p = lab.add_pod(n);
      CHECK(reachable_soon({&pods[0], &pods[3]}, p, std::chrono::seconds(60)));
      for (auto& a : agents) CHECK(a->stop(SIGTERM) == 0);
      CHECK(newcomer->stop(SIGTERM) == 0);
    }
  }
}

}  // namespace

TEST_CASE("vxlan: three nodes on a file store", "[vxlan][multinode]") { multi_node(false); }

TEST_CASE("vxlan: three nodes on etcd", "[vxlan][multinode][etcd]") { multi_node(true); }
