// The node's block cache (one-round-trip ADD and DEL on a store with transactions) and the
// release of blocks empty for their grace period, on the memory store (with etcd-like
// transactions where round trips are counted).
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/errors.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/block_cache.h"
#include "ipam/global/config.h"
#include "libcni/core/error.h"
#include "test/support/memory_store.h"
#include "test/support/temp_dir.h"

using ipam::Assignment;
using ipam::Block;
using ipam::BlockAllocator;
using ipam::BlockCache;
using ipam::records::Handle;
using nlohmann::json;

namespace {

struct World {
  explicit World(const char* cidr = "10.0.0.0/24", int block_size = 28) {
    cfg = ipam::parse_global_ipam(
        {{"pools", {{{"name", "p"}, {"cidr", cidr}, {"blockSize", block_size}}}},
         {"nodeName", "unused"}},
        "ipam", {});
    store.set_transactions(true);
  }
  BlockAllocator node(const std::string& name, BlockCache* cache = nullptr, bool strict = false) {
    ipam::AllocatorOptions o;
    o.node = name;
    o.cache = cache;
    o.strict_affinity = strict;
    o.sleep = [](std::chrono::microseconds) {};
    o.empty_block_grace_s = 600;
    o.now = [this] { return clock; };
    return BlockAllocator(cfg.pools, store, o);
  }
  int trips() const { return store.counts().round_trips; }
  std::map<cni::IpAddress, std::string> allocations() {
    std::map<cni::IpAddress, std::string> out;
    for (const auto& e : store.list("blocks/")) {
      Block b = Block::from_json(json::parse(e.value));
      for (const auto& [ord, a] : b.allocations) {
        CHECK(out.emplace(b.address(ord), a.handle).second);  // never twice
      }
    }
    return out;
  }
  ipam::GlobalConfig cfg;
  ipam::MemoryStore store;
  int64_t clock = 1000000;
};

Handle h(int i) { return Handle{"net", "c" + std::to_string(i), "eth0"}; }

Assignment add(BlockAllocator& a, const Handle& handle) {
  auto got = a.assign(handle, {});
  REQUIRE(got.size() == 1);
  return got[0];
}

// Nodes n0..n3 (strictAffinity) with one address each: every block of w's /26 claimed.
std::vector<BlockAllocator> fill_four(World& w, std::vector<Assignment>& held) {
  std::vector<BlockAllocator> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back(w.node("n" + std::to_string(i), nullptr, true));
  for (int i = 0; i < 4; ++i) held.push_back(add(nodes[i], h(i)));
  return nodes;
}

}  // namespace

TEST_CASE("cache: an ADD and a DEL it predicts are one round trip each", "[global-ipam][cache]") {
  World w;
  BlockCache cache;
  auto n = w.node("n", &cache);
  Assignment first = add(n, h(1));  // claims the block: several round trips
  int before = w.trips();
  Assignment second = add(n, h(2));
  CHECK(w.trips() - before == 1);
  CHECK(second.block == first.block);
  CHECK(second.ip != first.ip);
  before = w.trips();
  CHECK(n.release(h(2)).size() == 1);
  CHECK(w.trips() - before == 1);
  before = w.trips();
  CHECK(n.release(h(1)).size() == 1);  // its record was cached by the claim
  CHECK(w.trips() - before == 1);
  CHECK(w.allocations().empty());
  CHECK(w.store.list("handles/").empty());
  // A retried ADD (the handle exists) is never predicted: the full path finds what it holds.
  Assignment again = add(n, h(3));
  CHECK(add(n, h(3)).reused);
  CHECK(n.held(h(3))[0].ip == again.ip);
}

TEST_CASE("cache: a wrong prediction costs a round trip, never an address",
          "[global-ipam][cache]") {
  World w;
  BlockCache cache;
  auto n = w.node("n", &cache);
  add(n, h(1));
  // Another process of the same node (without the cache) takes an address: the cached block
  // is stale.
  auto other = w.node("n");
  Assignment o = add(other, h(2));
  int before = w.trips();
  Assignment mine = add(n, h(3));
  CHECK(w.trips() - before == 2);  // the refused txn (with the reads), then the write
  CHECK(mine.ip != o.ip);
  // The handle's record changed behind the cache: the DEL is refused, reads, then writes.
  auto rec = w.store.get(h(1).key());
  REQUIRE(w.store.put_if(h(1).key(), rec->value, rec->revision));
  CHECK(n.release(h(1)).size() == 1);
  CHECK(w.allocations().size() == 2);
  // The cache's block released and claimed by another node meanwhile: still no duplicate.
  w.clock += 10000;
  CHECK(n.release(h(3)).size() == 1);
  CHECK(other.release(h(2)).size() == 1);
  w.clock += 601;
  auto m = w.node("m", nullptr, true);
  // m claims every other block of the pool, then reclaims n's empty one.
  std::set<std::string> blocks;
  for (int i = 10; blocks.size() < 16; ++i) blocks.insert(add(m, h(i)).block.str());
  CHECK(w.store.list("affinity/n/", true).empty());
  // n's cache names a block that is m's now: the refused prediction reads the truth, and n
  // (not strict) borrows from m's blocks.
  Assignment after = add(n, Handle{"net", "n-late", "eth0"});
  CHECK(after.block_affinity == "m");
  CHECK(after.borrowed);
  CHECK(w.allocations().size() == w.store.list("handles/").size());
}

TEST_CASE("compact blocks: a store whose blocks an earlier version wrote verbose still works",
          "[global-ipam][cache]") {
  World w;  // transactions: blocks written compact, as on etcd
  auto plain = w.node("n");
  Assignment first = add(plain, h(1));
  std::string key = ipam::records::block_key("p", first.block);
  CHECK(json::parse(w.store.get(key)->value).contains("v"));
  // The block as the version before the compact form wrote it (and a cache of this node that
  // still remembers the compact one).
  BlockCache cache;
  auto n = w.node("n", &cache);
  add(n, h(2));
  auto e = w.store.get(key);
  Block verbose = Block::decode(e->value);
  REQUIRE(w.store.put_if(key, verbose.to_json().dump(), e->revision));
  CHECK_FALSE(json::parse(w.store.get(key)->value).contains("v"));
  // Read as it is: the next ADDs (predicted from the stale cache, and not) take other
  // addresses of it, and the DELs release what the verbose block held.
  Assignment third = add(n, h(3));
  Assignment fourth = add(plain, h(4));
  CHECK(third.block == first.block);
  CHECK(fourth.block == first.block);
  CHECK(w.allocations().size() == 4);
  CHECK(json::parse(w.store.get(key)->value).contains("v"));  // rewritten compact
  REQUIRE(w.store.put_if(key, Block::decode(w.store.get(key)->value).to_json().dump(),
                         w.store.get(key)->revision));
  CHECK(n.release(h(1)).size() == 1);
  CHECK(plain.release(h(2)).size() == 1);
  auto left = w.allocations();
  CHECK(left.size() == 2);
  CHECK(left.count(third.ip));
  CHECK(left.count(fourth.ip));
}

TEST_CASE("cache: the file round-trips; a malformed one is an empty cache",
          "[global-ipam][cache]") {
  strait::unit::TmpDir d;
  std::string path = BlockCache::path_for(d.path(), "etcd store x");
  CHECK(path.rfind(d.path() + "/cache.", 0) == 0);
  CHECK(path != BlockCache::path_for(d.path(), "etcd store y"));
  {
    BlockCache c(path);
    CHECK(c.blocks().empty());
    c.put({"blocks/p/10.0.0.0-28", std::string("{\"a\":\n1}\0x", 10), 7});
    c.put({"handles/n/c/eth0", "{}", 9});
    c.save();
  }
  BlockCache c(path);
  REQUIRE(c.blocks().size() == 1);
  CHECK(c.blocks().begin()->second.value == std::string("{\"a\":\n1}\0x", 10));
  CHECK(c.blocks().begin()->second.revision == 7);
  REQUIRE(c.handle("handles/n/c/eth0"));
  CHECK(c.handle("handles/n/c/eth0")->revision == 9);
  // Rewritten in place: a shorter cache leaves nothing of the longer one behind.
  {
    BlockCache shorter(path);
    shorter.forget("handles/n/c/eth0");
    shorter.save();
  }
  CHECK_FALSE(BlockCache(path).handle("handles/n/c/eth0"));
  CHECK(BlockCache(path).blocks().size() == 1);
  // A file framed right (length and hash of the body) whose entries are malformed.
  auto framed = [](const std::string& body) {
    return "strait-block-cache 2 " + std::to_string(body.size()) + " " +
           std::to_string(std::hash<std::string_view>{}(body)) + "\n" + body;
  };
  std::string good = "B 7 20 1\nblocks/p/10.0.0.0-28x\n";
  std::ofstream(path) << framed(good);
  CHECK(BlockCache(path).blocks().size() == 1);
  std::ofstream(path) << framed("B 7 999 1\nshort");
  CHECK(BlockCache(path).blocks().empty());
  // Lengths whose sum wraps around are malformed too, not an index before the data.
  std::ofstream(path) << framed("B 7 18446744073709551615 1\n\nX");
  CHECK(BlockCache(path).blocks().empty());
  // Torn (a holder killed mid-write): the body differs from its hash, or is longer or shorter
  // than its length says. The version before this format is refused too.
  std::string torn = framed(good);
  torn[torn.size() - 3] = 'y';
  std::ofstream(path) << torn;
  CHECK(BlockCache(path).blocks().empty());
  std::ofstream(path) << framed(good) << "B 8";
  CHECK(BlockCache(path).blocks().empty());
  std::ofstream(path) << framed(good).substr(0, framed(good).size() - 1);
  CHECK(BlockCache(path).blocks().empty());
  std::ofstream(path) << "strait-block-cache 1\n" << good;
  CHECK(BlockCache(path).blocks().empty());
}

TEST_CASE("empty blocks: released after their grace period, never while in use",
          "[global-ipam][cache]") {
  World w("10.0.0.0/26", 28);  // four blocks of 16
  std::vector<Assignment> held;
  auto nodes = fill_four(w, held);
  auto late = w.node("late", nullptr, true);
  auto exhausted = [&] {
    try {
      late.assign(h(50), {});
      return false;
    } catch (const cni::Error& e) {
      return e.code() == ipam::kErrNoAddress;
    }
  };
  CHECK(exhausted());
  // n0's pod goes: its block is empty from now on.
  REQUIRE(nodes[0].release(h(0)).size() == 1);
  auto key = ipam::records::block_key("p", held[0].block);
  CHECK(Block::from_json(json::parse(w.store.get(key)->value)).empty_since == w.clock);
  w.clock += 599;
  CHECK(exhausted());  // within its grace period
  w.clock += 1;
  SECTION("an ADD of its owner comes first: the release is refused") {
    // The owner takes an address between the reclaimer's read and its delete.
    bool raced = false;
    Assignment owner;
    w.store.on_write = [&](const std::string& k) {
      if (k == key && !raced) {
        raced = true;
        owner = add(nodes[0], h(10));
      }
    };
    CHECK(exhausted());
    w.store.on_write = nullptr;
    CHECK(raced);
    CHECK(owner.block == held[0].block);
    CHECK(w.allocations().at(owner.ip) == "net/c10/eth0");  // n0's, in n0's block still
    CHECK(Block::from_json(json::parse(w.store.get(key)->value)).affinity == "n0");
  }
  SECTION("nobody uses it: the next node that needs a block gets it") {
    Assignment got = add(late, h(50));
    CHECK(got.block == held[0].block);
    CHECK(got.block_affinity == "late");
    CHECK_FALSE(w.store.get(ipam::records::affinity_key("n0", "p", held[0].block)));
    CHECK(w.store.get(ipam::records::affinity_key("late", "p", held[0].block)));
  }
  SECTION("a block emptied before blocks were stamped gets its grace period from first sight") {
    Block b = Block::from_json(json::parse(w.store.get(key)->value));
    b.empty_since.reset();
    REQUIRE(w.store.put_if(key, b.to_json().dump(), w.store.get(key)->revision));
    CHECK(exhausted());  // stamped now
    CHECK(Block::from_json(json::parse(w.store.get(key)->value)).empty_since == w.clock);
    w.clock += 600;
    CHECK(add(late, h(50)).block == held[0].block);
  }
  SECTION("grace 0: never released") {
    ipam::AllocatorOptions o;
    o.node = "never";
    o.strict_affinity = true;
    o.empty_block_grace_s = 0;
    o.now = [&] { return w.clock + 1000000; };
    BlockAllocator never(w.cfg.pools, w.store, o);
    CHECK_THROWS_AS(never.assign(h(60), {}), cni::Error);
  }
}

TEST_CASE("STATUS: a block empty past its grace period is room, and STATUS writes nothing",
          "[global-ipam][cache]") {
  World w("10.0.0.0/26", 28);  // four blocks of 16
  std::vector<Assignment> held;
  auto nodes = fill_four(w, held);
  // strictAffinity: no borrowing, so only a free or a reclaimable block is room for it.
  auto late = w.node("late", nullptr, true);
  auto status_code = [&] {
    try {
      late.check_available();
      return 0;
    } catch (const cni::Error& e) {
      return e.code();
    }
  };
  CHECK(status_code() == ipam::kErrNoAddress);  // every block claimed and in use
  REQUIRE(nodes[0].release(h(0)).size() == 1);  // n0's block is empty from now on
  auto snapshot = [&] {
    std::map<std::string, std::pair<std::string, int64_t>> out;
    for (const auto& e : w.store.list("")) out[e.key] = {e.value, e.revision};
    return out;
  };
  w.clock += 599;
  CHECK(status_code() == ipam::kErrNoAddress);  // within its grace period
  w.clock += 1;
  auto before = snapshot();
  CHECK(status_code() == 0);    // reclaimable: the next ADD would get it
  CHECK(snapshot() == before);  // nothing released by STATUS itself
  CHECK(add(late, h(50)).block == held[0].block);
  CHECK(status_code() == 0);  // its own block has room now
  SECTION("a block emptied before blocks were stamped is not reclaimable yet") {
    auto key = ipam::records::block_key("p", held[1].block);
    REQUIRE(nodes[1].release(h(1)).size() == 1);
    Block b = Block::from_json(json::parse(w.store.get(key)->value));
    b.empty_since.reset();
    REQUIRE(w.store.put_if(key, b.to_json().dump(), w.store.get(key)->revision));
    auto other = w.node("other", nullptr, true);
    w.clock += 100000;
    CHECK_THROWS_AS(other.check_available(), cni::Error);
  }
}
