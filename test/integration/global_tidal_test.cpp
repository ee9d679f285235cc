// Tidal load through the real executable: 8 nodes fill a pool whose blocks just cover them,
// every pod of 4 nodes goes, and once the empty blocks' grace period has passed the other 4
// nodes allocate the freed blocks (strictAffinity: they cannot borrow, so every address they
// get comes from a block given back). No address is ever handed out twice, and the store is
// consistent at the end. On the file store and on etcd (started here on 127.0.0.1).
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/etcd_store.h"
#include "ipam/global/file_store.h"
#include "libcni/process/invoke.h"
#include "test/support/etcd_fixture.h"
#include "test/support/harness.h"

namespace {

using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::run_plugin;
using strait::test::TempDir;
using strait::test::unique_name;

constexpr int kNodes = 8;
constexpr int kGraceSeconds = 2;

// What the pods hold: address -> container ID, checked on every ADD.
struct Live {
  std::mutex mu;
  std::map<std::string, std::string> held;
  std::vector<std::string> problems;
  void add(const std::string& ip, const std::string& id) {
    std::lock_guard lock(mu);
    if (!held.emplace(ip, id).second) problems.push_back(ip + " handed out twice");
  }
  void drop(const std::string& ip) {
    std::lock_guard lock(mu);
    held.erase(ip);
  }
};

void tidal(const json& store, ipam::KvStore& reader, const std::string& cli_store_flags_json) {
  TempDir locks("strait-gtidal-locks");
  std::string network = unique_name("tidal", 40);
  json conf = {{"cniVersion", "1.1.0"},
               {"name", network},
               {"type", "global-ipam"},
               {"ipam",
                {{"type", "global-ipam"},
                 // 8 blocks of 16: one per node (126 usable: not the pool's network, broadcast).
                 {"pools", {{{"name", "tide"}, {"cidr", "10.140.0.0/25"}, {"blockSize", 28}}}},
                 {"strictAffinity", true},
                 {"emptyBlockGraceSeconds", kGraceSeconds},
                 {"store", store},
                 {"nodeLockDir", locks.path()}}}};
  const std::string input = conf.dump();
  Live live;
  std::map<int, std::vector<std::pair<std::string, std::string>>> pods;  // node -> (id, ip)
  std::mutex pods_mu;
  auto env = [&](const std::string& cmd, const std::string& id, int node) {
    cni::EnvMap e = plugin_env(cmd, id, "/run/netns/unused", "eth0");
    e["K8S_NODE_NAME"] = "tide-" + std::to_string(node);
    return e;
  };
  // Node `n` adds pods until the pool is exhausted for it (code 100); returns how many.
  auto fill = [&](int n, int round) {
    int added = 0;
    for (int k = 0;; ++k) {
      std::string id =
          "r" + std::to_string(round) + "n" + std::to_string(n) + "p" + std::to_string(k);
      auto r = run_plugin(bin("global-ipam"), env("ADD", id, n), input);
      if (r.exit_code != 0) {
        json err = json::parse(r.out, nullptr, false);
        if (!err.is_object() || err.value("code", 0) != 100) {
          std::lock_guard lock(live.mu);
          live.problems.push_back("ADD " + id + ": " + r.out + r.err);
        }
        return added;
      }
      std::string addr = json::parse(r.out)["ips"][0]["address"];
      std::string ip = addr.substr(0, addr.find('/'));
      live.add(ip, id);
      std::lock_guard lock(pods_mu);
      pods[n].emplace_back(id, ip);
      ++added;
    }
  };
  auto in_parallel = [&](int from, int to, int round) {
    std::vector<std::thread> threads;
    std::vector<int> added(kNodes);
    for (int n = from; n < to; ++n) threads.emplace_back([&, n] { added[n] = fill(n, round); });
    for (auto& t : threads) t.join();
    int total = 0;
    for (int n = from; n < to; ++n) total += added[n];
    return total;
  };
  auto owners = [&] {
    std::map<std::string, int> blocks;  // node -> blocks
    for (const auto& e : reader.list("blocks/tide/")) {
      blocks[ipam::Block::from_json(json::parse(e.value)).affinity]++;
    }
    return blocks;
  };

  // High tide: every node fills its block; the pool is full.
  CHECK(in_parallel(0, kNodes, 1) == 126);
  auto high = owners();
  CHECK(high.size() == static_cast<size_t>(kNodes));
  for (const auto& [node, n] : high) CHECK(n == 1);

  // Low tide on nodes 0-3: every pod goes.
  int freed = 0;
  for (int n = 0; n < 4; ++n) {
    for (const auto& [id, ip] : pods[n]) {
      auto r = run_plugin(bin("global-ipam"), env("DEL", id, n), input);
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
      live.drop(ip);
      ++freed;
    }
    pods[n].clear();
    if (n == 0) {
      // Within the grace period an empty block stays its node's: node 4 finds nothing. (Right
      // after node 0's block emptied, so that the grace period cannot have passed yet.)
      auto early = run_plugin(bin("global-ipam"), env("ADD", "early", 4), input);
      INFO(early.out << early.err);
      CHECK(json::parse(early.out).value("code", 0) == 100);
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(kGraceSeconds + 1));

  // The tide moves to nodes 4-7: they take the freed blocks, all of them.
  CHECK(in_parallel(4, kNodes, 2) == freed);
  auto after = owners();
  for (int n = 0; n < 4; ++n) CHECK(after.count("tide-" + std::to_string(n)) == 0);
  int blocks_of_busy = 0;
  for (int n = 4; n < kNodes; ++n) blocks_of_busy += after["tide-" + std::to_string(n)];
  CHECK(blocks_of_busy == kNodes);
  for (const auto& p : live.problems) FAIL_CHECK(p);
  // The store agrees with the pods, and `global-ipam check` finds nothing wrong.
  std::map<std::string, std::string> stored;
  for (const auto& e : reader.list("blocks/tide/")) {
    auto b = ipam::Block::from_json(json::parse(e.value));
    for (const auto& [ord, a] : b.allocations) {
      CHECK(stored.emplace(b.address(ord).str(), a.handle).second);
    }
  }
  CHECK(stored.size() == live.held.size());
  for (const auto& [ip, id] : live.held) CHECK(stored[ip] == network + "/" + id + "/eth0");
  std::vector<std::string> argv = {bin("global-ipam")};
  for (const auto& f : json::parse(cli_store_flags_json)) argv.push_back(f);
  argv.push_back("check");
  auto check = cni::spawn(argv, {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
}

}  // namespace

TEST_CASE("tidal: blocks freed on 4 nodes go to the other 4 after the grace period (file store)",
          "[global-ipam][tidal]") {
  TempDir dir("strait-gtidal");
  ipam::FileStore reader(dir.path(), std::chrono::milliseconds(5000));
  tidal({{"type", "file"}, {"path", dir.path()}}, reader,
        json::array({"--store-path", dir.path()}).dump());
}

TEST_CASE("tidal: blocks freed on 4 nodes go to the other 4 after the grace period (etcd)",
          "[global-ipam][tidal][etcd]") {
  strait::test::EtcdCluster etcd;
  ipam::EtcdStore reader(etcd.options());
  tidal(
      {{"type", "etcd"}, {"endpoints", etcd.endpoints()}, {"prefix", "/strait-test"}}, reader,
      json::array({"--etcd-endpoints", etcd.endpoint(0), "--etcd-prefix", "/strait-test"}).dump());
}
