// Garbage collection of nodes that no longer exist, with the two-observation rule: marked
// first, collected on a second run at least the grace period later, never when something was
// written for the node in between (a slow ADD), never when it came back.
#include <set>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/config.h"
#include "ipam/global/dead_nodes.h"
#include "ipam/global/nodes.h"
#include "test/support/memory_store.h"

using ipam::BlockAllocator;
using ipam::records::Handle;
using nlohmann::json;

namespace {

struct World {
  World() {
    cfg = ipam::parse_global_ipam(
        {{"pools", {{{"name", "p"}, {"cidr", "10.0.0.0/24"}, {"blockSize", 28}}}},
         {"nodeName", "unused"}},
        "ipam", {});
  }
  BlockAllocator node(const std::string& name) {
    ipam::AllocatorOptions o;
    o.node = name;
    o.sleep = [](std::chrono::microseconds) {};
    return BlockAllocator(cfg.pools, store, o);
  }
  ipam::DeadNodeReport gc(int64_t now, bool dry_run = false) {
    ipam::DeadNodeGc g;
    g.alive = [this](const std::string& n) { return live.count(n) > 0; };
    g.grace_s = 900;
    g.now = now;
    g.dry_run = dry_run;
    return ipam::collect_dead_nodes(store, g);
  }
  std::set<std::string> owners() {
    std::set<std::string> out;
    for (const auto& e : store.list("blocks/")) {
      out.insert(ipam::Block::from_json(json::parse(e.value)).affinity);
    }
    return out;
  }
  ipam::GlobalConfig cfg;
  ipam::MemoryStore store;
  std::set<std::string> live = {"a", "b"};
};

Handle h(const std::string& id) { return Handle{"net", id, "eth0"}; }

}  // namespace

TEST_CASE("dead nodes: marked first, collected a grace period later", "[global-ipam][gc]") {
  World w;
  auto a = w.node("a");
  auto b = w.node("b");
  a.assign(h("a1"), {});
  b.assign(h("b1"), {});
  b.assign(h("b2"), {});
  CHECK(w.gc(1000).suspected.empty());  // everybody alive

  w.live.erase("b");
  auto first = w.gc(1000);
  CHECK(first.suspected == std::vector<std::string>{"b"});
  CHECK(first.collected.empty());
  CHECK(w.store.get("gc/dead-nodes/b"));
  CHECK(b.held(h("b1")).size() == 1);  // nothing released yet
  // Seen again, but within the grace period: still nothing.
  auto early = w.gc(1000 + 899);
  CHECK(early.suspected == std::vector<std::string>{"b"});
  CHECK(early.collected.empty());
  // A dry run says what it would do, and does nothing.
  auto dry = w.gc(1000 + 900, true);
  CHECK(dry.collected == std::vector<std::string>{"b"});
  CHECK(dry.released.size() == 2);
  CHECK(b.held(h("b1")).size() == 1);
  // Grace apart: b's handles, addresses, block, index, node record and mark go; a's stay.
  auto second = w.gc(1000 + 900);
  CHECK(second.collected == std::vector<std::string>{"b"});
  CHECK(second.released.size() == 2);
  CHECK(second.blocks_released.size() == 1);
  CHECK(second.errors.empty());
  CHECK(b.held(h("b1")).empty());
  CHECK(w.store.list("handles/net/b1/").empty());
  CHECK(w.store.list("affinity/b/", true).empty());
  CHECK_FALSE(ipam::nodes::get(w.store, "b"));
  CHECK_FALSE(w.store.get("gc/dead-nodes/b"));
  CHECK(w.owners() == std::set<std::string>{"a"});
  CHECK(a.held(h("a1")).size() == 1);
  // Nothing left of b: nothing to do.
  auto after = w.gc(5000);
  CHECK(after.suspected.empty());
  CHECK(after.collected.empty());
}

TEST_CASE("dead nodes: a slow ADD or a node that comes back is never collected",
          "[global-ipam][gc]") {
  World w;
  auto b = w.node("b");
  b.assign(h("b1"), {});
  w.live.erase("b");
  CHECK(w.gc(1000).suspected == std::vector<std::string>{"b"});
  SECTION("an ADD for b lands after the first observation") {
    b.assign(h("b2"), {});
    auto r = w.gc(1000 + 900);
    CHECK(r.collected.empty());
    CHECK(r.revived == std::vector<std::string>{"b"});
    CHECK(r.suspected == std::vector<std::string>{"b"});  // marked anew, from now
    CHECK(b.held(h("b2")).size() == 1);
    CHECK(w.gc(1000 + 1799).collected.empty());
    CHECK(w.gc(1000 + 1800).collected == std::vector<std::string>{"b"});
  }
  SECTION("b is in the list again") {
    w.live.insert("b");
    auto r = w.gc(1000 + 900);
    CHECK(r.revived == std::vector<std::string>{"b"});
    CHECK(r.collected.empty());
    CHECK_FALSE(w.store.get("gc/dead-nodes/b"));
    CHECK(b.held(h("b1")).size() == 1);
  }
}

TEST_CASE("dead nodes: a block holding others' addresses stays until it is empty",
          "[global-ipam][gc]") {
  World w;
  w.cfg = ipam::parse_global_ipam(
      {{"pools", {{{"name", "p"}, {"cidr", "10.0.0.0/28"}, {"blockSize", 28}}}},
       {"nodeName", "unused"}},
      "ipam", {});
  auto b = w.node("b");
  auto a = w.node("a");
  b.assign(h("b1"), {});
  auto borrowed = a.assign(h("a1"), {});  // the only block is b's: a borrows
  REQUIRE(borrowed[0].borrowed);
  w.live.erase("b");
  w.gc(1000);
  auto r = w.gc(1000 + 900);
  CHECK(r.collected == std::vector<std::string>{"b"});
  CHECK(r.released.size() == 1);
  CHECK(r.blocks_kept.size() == 1);
  CHECK(a.held(h("a1")).size() == 1);
  CHECK(w.store.get("gc/dead-nodes/b"));  // still to finish
  a.release(h("a1"));
  auto last = w.gc(1000 + 1000);
  CHECK(last.collected == std::vector<std::string>{"b"});
  CHECK(last.blocks_released.size() == 1);
  CHECK(w.store.list("blocks/").empty());
  CHECK_FALSE(w.store.get("gc/dead-nodes/b"));
}
