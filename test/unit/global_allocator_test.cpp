#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/errors.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/config.h"
#include "libcni/core/error.h"
#include "test/support/memory_store.h"

using cni::IpAddress;
using cni::IpNet;
using ipam::Assignment;
using ipam::Block;
using ipam::BlockAllocator;
using ipam::records::Handle;
using nlohmann::json;

namespace {

IpAddress ip(const char* s) { return IpAddress::parse(s); }
IpNet net(const char* s) { return IpNet::parse(s); }

// Pools from a JSON list, a memory store, and allocators for any node.
struct Cluster {
  Cluster(std::initializer_list<json> pools, json extra = json::object()) {
    extra["pools"] = json::array();
    for (const auto& p : pools) extra["pools"].push_back(p);
    extra["nodeName"] = "unused";
    cfg = ipam::parse_global_ipam(extra, "ipam", {});
  }
  BlockAllocator node(const std::string& name, bool strict = false, uint32_t cap = 0) {
    ipam::AllocatorOptions o;
    o.node = name;
    o.strict_affinity = strict;
    o.max_blocks_per_node = cap;
    o.sleep = [](std::chrono::microseconds) {};
    return BlockAllocator(cfg.pools, store, o);
  }
  Block block(const std::string& pool, const IpNet& cidr) {
    auto e = store.get(ipam::records::block_key(pool, cidr));
    REQUIRE(e);
    return Block::from_json(json::parse(e->value));
  }
  bool has(const std::string& key) { return store.get(key).has_value(); }
  // Every allocation in the store: ip -> handle.
  std::map<IpAddress, std::string> allocations() {
    std::map<IpAddress, std::string> out;
    for (const auto& e : store.list("blocks/")) {
      Block b = Block::from_json(json::parse(e.value));
      for (const auto& [ord, a] : b.allocations) {
        bool fresh = out.emplace(b.address(ord), a.handle).second;
        CHECK(fresh);
      }
    }
    return out;
  }
  ipam::GlobalConfig cfg;
  ipam::MemoryStore store;
};

json pool(const char* name, const char* cidr, int block_size = 0) {
  json p = {{"name", name}, {"cidr", cidr}};
  if (block_size) p["blockSize"] = block_size;
  return p;
}

Handle handle(int i, const std::string& ifname = "eth0") {
  return Handle{"net", "c" + std::to_string(i), ifname};
}

Assignment one(BlockAllocator& a, const Handle& h, std::vector<ipam::AddressRequest> req = {}) {
  auto got = a.assign(h, req);
  REQUIRE(got.size() == 1);
  return got[0];
}

cni::Error error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cni::Error& e) {
    return e;
  }
  FAIL("no cni::Error thrown");
  return cni::Error(0, "");
}

}  // namespace

TEST_CASE("global allocator: first ADD claims a block for the node", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/16")});
  auto a = c.node("node-a");
  Assignment got = one(a, handle(1));
  CHECK(got.pool == "p");
  CHECK(got.block.prefix == 27);
  CHECK(got.block.contains(got.ip));
  CHECK(got.block_affinity == "node-a");
  CHECK_FALSE(got.borrowed);
  CHECK_FALSE(got.reused);
  CHECK(got.seq == 1);
  // The claim left: the block (affine, holding the address), the node's index entry, the pool
  // record, the node record and the handle record.
  Block b = c.block("p", got.block);
  CHECK(b.affinity == "node-a");
  REQUIRE(b.allocations.size() == 1);
  CHECK(b.allocations.begin()->second.handle == "net/c1/eth0");
  CHECK(c.has(ipam::records::affinity_key("node-a", "p", got.block)));
  CHECK(c.has("pools/p"));
  CHECK(c.has("nodes/node-a"));
  CHECK(c.has("handles/net/c1/eth0"));
  // Deterministic: the node's first block is its first probe.
  auto& l = c.cfg.pools[0].layout;
  CHECK(got.block == l.block(l.probe(ipam::node_pool_hash("node-a", "p"), 0)));

  // Another node claims another block.
  auto b2 = c.node("node-b");
  Assignment other = one(b2, handle(2));
  CHECK(other.block != got.block);
  CHECK(other.block_affinity == "node-b");
}

TEST_CASE("global allocator: fill a block, then claim the next", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/16")});
  auto a = c.node("node-a");
  std::set<std::string> blocks;
  std::set<IpAddress> ips;
  for (int i = 0; i < 32 * 3; ++i) {
    Assignment got = one(a, handle(i));
    CHECK(ips.insert(got.ip).second);
    blocks.insert(got.block.str());
    CHECK(got.block_affinity == "node-a");
    CHECK(c.cfg.pools[0].usable(got.ip));
  }
  // 96 addresses in /27 blocks: three full blocks (fewer if a block held the pool's network
  // or broadcast address, which is skipped).
  CHECK(blocks.size() >= 3);
  CHECK(blocks.size() <= 4);
  CHECK(c.store.list("affinity/node-a/p/", true).size() == blocks.size());
  // Addresses of the first block come in order: round robin within a block.
  Assignment next = one(a, handle(1000));
  CHECK(ips.count(next.ip) == 0);
}

TEST_CASE("global allocator: reuse by handle, one address per family", "[global-ipam][allocator]") {
  Cluster c({pool("v4", "10.0.0.0/24"), pool("v6", "fd00::/120", 122)});
  auto a = c.node("n");
  auto first = a.assign(handle(1), {});
  REQUIRE(first.size() == 2);
  CHECK(first[0].ip.is_v4());
  CHECK(first[1].ip.is_v6());
  auto again = a.assign(handle(1), {});
  REQUIRE(again.size() == 2);
  CHECK(again[0].ip == first[0].ip);
  CHECK(again[1].ip == first[1].ip);
  CHECK(again[0].reused);
  CHECK(again[1].reused);
  CHECK(c.allocations().size() == 2);
  // Another interface of the same container is another handle.
  auto eth1 = a.assign(handle(1, "eth1"), {});
  CHECK(eth1[0].ip != first[0].ip);
  CHECK(c.allocations().size() == 4);
  CHECK(a.held(handle(1)).size() == 2);
}

TEST_CASE("global allocator: release by handle", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24")});
  auto a = c.node("n");
  Assignment got = one(a, handle(1));
  auto released = a.release(handle(1));
  REQUIRE(released.size() == 1);
  CHECK(released[0].ip == got.ip);
  CHECK(c.allocations().empty());
  CHECK_FALSE(c.has("handles/net/c1/eth0"));
  CHECK(a.release(handle(1)).empty());   // idempotent
  CHECK(a.release(handle(99)).empty());  // unknown
  CHECK(a.held(handle(1)).empty());
  // The block stays the node's.
  CHECK(c.block("p", got.block).affinity == "n");
  // Round robin: the released address is not the next one given.
  CHECK(one(a, handle(2)).ip != got.ip);
}

TEST_CASE("global allocator: pool network, broadcast and gateway are never given",
          "[global-ipam][allocator]") {
  Cluster c(
      {{{"name", "p"}, {"cidr", "10.0.0.0/26"}, {"blockSize", 28}, {"gateway", "10.0.0.17"}}});
  auto a = c.node("n");
  std::set<IpAddress> got;
  for (int i = 0; i < 61; ++i) got.insert(one(a, handle(i)).ip);
  CHECK(got.size() == 61);  // 64 - network - broadcast - gateway
  CHECK(got.count(ip("10.0.0.0")) == 0);
  CHECK(got.count(ip("10.0.0.63")) == 0);
  CHECK(got.count(ip("10.0.0.17")) == 0);
  // Block edges are handed out: blocks are routed, not subnets.
  CHECK(got.count(ip("10.0.0.15")));
  CHECK(got.count(ip("10.0.0.16")));
  CHECK(got.count(ip("10.0.0.48")));
  auto e = error_of([&] { a.assign(handle(99), {}); });
  CHECK(e.code() == ipam::kErrNoAddress);
  CHECK(e.msg() == "pool p exhausted");
  CHECK(c.allocations().size() == 61);
  CHECK_FALSE(c.has("handles/net/c99/eth0"));  // the failed ADD left nothing
}

TEST_CASE("global allocator: borrowing and strict affinity", "[global-ipam][allocator]") {
  // Two blocks of 16: node-a and node-b claim one each.
  Cluster c({pool("p", "10.0.0.0/27", 28)});
  auto a = c.node("node-a");
  auto b = c.node("node-b");
  Assignment ab = one(b, handle(100));
  std::set<IpAddress> mine;
  Assignment first = one(a, handle(0));
  CHECK(first.block != ab.block);
  mine.insert(first.ip);
  // node-a's block has 15 usable addresses (the pool's network or broadcast is in it).
  for (int i = 1; i < 15; ++i) {
    Assignment x = one(a, handle(i));
    CHECK(x.block == first.block);
    mine.insert(x.ip);
  }
  CHECK(mine.size() == 15);

  SECTION("borrow from node-b's block") {
    Assignment x = one(a, handle(50));
    CHECK(x.block == ab.block);
    CHECK(x.borrowed);
    CHECK(x.block_affinity == "node-b");
    Block blk = c.block("p", ab.block);
    CHECK(blk.affinity == "node-b");
    CHECK(blk.allocations.at(blk.ordinal(x.ip)).node == "node-a");
    // The borrower's DEL releases it from node-b's block.
    a.release(handle(50));
    CHECK(c.block("p", ab.block).allocations.size() == 1);
  }
  SECTION("strictAffinity: exhausted instead") {
    auto strict = c.node("node-a", true);
    auto e = error_of([&] { strict.assign(handle(50), {}); });
    CHECK(e.code() == ipam::kErrNoAddress);
    CHECK(e.msg() == "pool p exhausted");
    CHECK(e.details().find("strictAffinity") != std::string::npos);
    CHECK(c.block("p", ab.block).allocations.size() == 1);
  }
}

TEST_CASE("global allocator: maxBlocksPerNode caps claims", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24", 28)});
  auto capped = c.node("n", true, 2);
  std::set<std::string> blocks;
  int n = 0;
  for (; n < 40; ++n) {
    try {
      blocks.insert(one(capped, handle(n)).block.str());
    } catch (const cni::Error& e) {
      CHECK(e.code() == ipam::kErrNoAddress);
      CHECK(e.msg() == "pool p exhausted");
      CHECK(e.details().find("maxBlocksPerNode 2") != std::string::npos);
      break;
    }
  }
  CHECK(blocks.size() == 2);
  CHECK(n >= 30);  // two blocks of 16, minus at most the network and the broadcast
  CHECK(n <= 32);
  // Without strictAffinity the capped node borrows (from another node's block).
  auto other = c.node("m");
  one(other, handle(500));
  auto borrower = c.node("n", false, 2);
  Assignment x = one(borrower, handle(600));
  CHECK(x.borrowed);
  CHECK(x.block_affinity == "m");
}

TEST_CASE("global allocator: sequence numbers stop stale releases", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24")});
  auto a = c.node("n");
  Assignment old = one(a, handle(1), {{ip("10.0.0.40"), "test"}});
  CHECK(old.ip == ip("10.0.0.40"));
  REQUIRE(a.release(handle(1)).size() == 1);

  SECTION("given to another handle") {
    Assignment now = one(a, handle(2), {{ip("10.0.0.40"), "test"}});
    CHECK(now.seq > old.seq);
    CHECK(a.release_address("p", old.block, old.ip, "net/c1/eth0", old.seq) ==
          Block::ReleaseOutcome::kOtherHandle);
    CHECK(c.allocations().at(ip("10.0.0.40")) == "net/c2/eth0");
  }
  SECTION("given again to the same handle") {
    Assignment now = one(a, handle(1), {{ip("10.0.0.40"), "test"}});
    CHECK(now.seq > old.seq);
    CHECK(a.release_address("p", old.block, old.ip, "net/c1/eth0", old.seq) ==
          Block::ReleaseOutcome::kBadSequence);
    CHECK(c.allocations().at(ip("10.0.0.40")) == "net/c1/eth0");
    CHECK(a.release_address("p", now.block, now.ip, "net/c1/eth0", now.seq) ==
          Block::ReleaseOutcome::kReleased);
    CHECK(c.allocations().empty());
  }
}

TEST_CASE("global allocator: requested addresses", "[global-ipam][allocator]") {
  Cluster c(
      {{{"name", "p"}, {"cidr", "10.0.0.0/24"}, {"gateway", "10.0.0.1"}}, pool("v6", "fd00::/64")});
  auto a = c.node("n");
  SECTION("free, in an unclaimed block: claimed for the node") {
    auto got = a.assign(handle(1), {{ip("10.0.0.77"), "CNI_ARGS IP"}});
    REQUIRE(got.size() == 2);  // and an IPv6 address from the other pool
    CHECK(got[0].ip == ip("10.0.0.77"));
    CHECK(got[0].block == net("10.0.0.64/27"));
    CHECK(got[0].block_affinity == "n");
    CHECK(got[1].ip.is_v6());
  }
  SECTION("block edges are usable") {
    CHECK(a.assign(handle(1), {{ip("10.0.0.32"), "x"}})[0].ip == ip("10.0.0.32"));
    CHECK(a.assign(handle(2), {{ip("10.0.0.31"), "x"}})[0].ip == ip("10.0.0.31"));
  }
  SECTION("refusals") {
    a.assign(handle(1), {{ip("10.0.0.77"), "x"}});
    auto code_msg = [&](const char* addr) {
      auto e = error_of([&] { a.assign(handle(2), {{ip(addr), "CNI_ARGS IP"}}); });
      CHECK(e.code() == ipam::kErrAddressUnavailable);
      return e.msg();
    };
    CHECK(code_msg("10.0.0.77") ==
          "requested IP address 10.0.0.77 (CNI_ARGS IP) is not available in pool p (held by "
          "net/c1/eth0)");
    CHECK(code_msg("10.0.0.0") ==
          "requested IP address 10.0.0.0 (CNI_ARGS IP) is the network address of pool p");
    CHECK(code_msg("10.0.0.255") ==
          "requested IP address 10.0.0.255 (CNI_ARGS IP) is the broadcast address of pool p");
    CHECK(code_msg("10.0.0.1") ==
          "requested IP address 10.0.0.1 (CNI_ARGS IP) is the gateway of pool p");
    CHECK(code_msg("192.0.2.1") ==
          "requested IP address 192.0.2.1 (CNI_ARGS IP) is not in any pool");
    // Nothing was left behind by the refusals.
    CHECK(c.allocations().size() == 2);
    CHECK_FALSE(c.has("handles/net/c2/eth0"));
  }
  SECTION("in another node's block: borrowed, unless strict") {
    auto b = c.node("m");
    Assignment theirs = b.assign(handle(9), {{ip("10.0.0.100"), "x"}})[0];
    CHECK(theirs.block_affinity == "m");
    Assignment x = a.assign(handle(1), {{ip("10.0.0.101"), "x"}})[0];
    CHECK(x.borrowed);
    auto strict = c.node("n", true);
    auto e = error_of([&] { strict.assign(handle(2), {{ip("10.0.0.102"), "x"}}); });
    CHECK(e.code() == ipam::kErrAddressUnavailable);
    CHECK(e.msg().find("strictAffinity") != std::string::npos);
  }
  SECTION("a retried ADD asking for another address than it holds") {
    a.assign(handle(1), {{ip("10.0.0.77"), "x"}});
    auto e = error_of([&] { a.assign(handle(1), {{ip("10.0.0.78"), "x"}}); });
    CHECK(e.code() == ipam::kErrAddressUnavailable);
    CHECK(a.assign(handle(1), {{ip("10.0.0.77"), "x"}})[0].reused);
  }
}

TEST_CASE("global allocator: node selectors pick the pool", "[global-ipam][allocator]") {
  Cluster c({{{"name", "rack1"}, {"cidr", "10.1.0.0/24"}, {"nodeSelector", "rack1-*"}},
             {{"name", "rest"}, {"cidr", "10.2.0.0/24"}, {"nodeSelector", "*"}}});
  auto r1 = c.node("rack1-n1");
  auto got = r1.assign(handle(1), {});
  // Both pools select rack1-n1: one IPv4 address, from the first pool.
  REQUIRE(got.size() == 1);
  CHECK(got[0].pool == "rack1");
  auto r2 = c.node("rack2-n1");
  CHECK(one(r2, handle(2)).pool == "rest");
  Cluster none({{{"name", "rack1"}, {"cidr", "10.1.0.0/24"}, {"nodeSelector", "rack1-*"}}});
  auto n = none.node("rack9-n1");
  auto e = error_of([&] { n.assign(handle(3), {}); });
  CHECK(e.code() == ipam::kErrNoAddress);
  CHECK(e.msg() == "no pool selects node rack9-n1 (every pool's nodeSelector excludes it)");
}

TEST_CASE("global allocator: a failed dual-stack ADD gives back its first address",
          "[global-ipam][allocator]") {
  // The IPv6 pool is a single /128 block... of one usable address, taken first.
  Cluster c({pool("v4", "10.0.0.0/24"), pool("v6", "fd00::/126", 126)});
  auto a = c.node("n");
  REQUIRE(a.assign(handle(1), {}).size() == 2);
  REQUIRE(a.assign(handle(2), {}).size() == 2);
  REQUIRE(a.assign(handle(3), {}).size() == 2);  // fd00::1, ::2, ::3 (::0 is the network)
  auto e = error_of([&] { a.assign(handle(4), {}); });
  CHECK(e.code() == ipam::kErrNoAddress);
  CHECK(e.msg() == "pool v6 exhausted");
  CHECK(c.allocations().size() == 6);
  CHECK(a.held(handle(4)).empty());
  CHECK_FALSE(c.has("handles/net/c4/eth0"));
}

TEST_CASE("global allocator: a changed blockSize or an overlapping stored pool is a config error",
          "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24")});
  auto a = c.node("n");
  one(a, handle(1));
  Cluster changed({pool("p", "10.0.0.0/24", 26)});
  // Share the store: copy every key.
  for (const auto& e : c.store.list("")) changed.store.put_if(e.key, e.value, 0);
  auto b = changed.node("n");
  auto e = error_of([&] { b.assign(handle(2), {}); });
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK(e.msg() ==
        "invalid config: pool p: cidr 10.0.0.0/24 blockSize 26 differs from cidr 10.0.0.0/24 "
        "blockSize 27 in memory store; a pool's cidr and blockSize cannot change once it has "
        "blocks");

  Cluster overlap({pool("q", "10.0.0.128/25")});
  for (const auto& x : c.store.list("")) overlap.store.put_if(x.key, x.value, 0);
  auto o = overlap.node("n");
  auto e2 = error_of([&] { o.assign(handle(3), {}); });
  CHECK(e2.code() == cni::kErrInvalidConfig);
  CHECK(e2.msg() ==
        "invalid config: pool q (10.0.0.128/25) overlaps pool p (10.0.0.0/24) in memory store");
}

TEST_CASE("global allocator: a lost compare-and-swap is retried", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24")});
  auto a = c.node("n");
  one(a, handle(0));  // the node's block exists
  auto rival = c.node("n");
  bool fired = false;
  Assignment theirs;
  c.store.on_write = [&](const std::string& key) {
    // Just before our block write, another process of the node takes an address.
    if (!fired && key.rfind("blocks/", 0) == 0) {
      fired = true;
      theirs = one(rival, handle(2));
    }
  };
  Assignment ours = one(a, handle(1));
  c.store.on_write = nullptr;
  CHECK(fired);
  CHECK(ours.ip != theirs.ip);
  CHECK(c.store.counts().conflicts >= 1);
  auto all = c.allocations();
  CHECK(all.size() == 3);
  CHECK(all.at(ours.ip) == "net/c1/eth0");
  CHECK(all.at(theirs.ip) == "net/c2/eth0");
  // The handle record holds the stale intent and the real entry; only the real one counts.
  auto held = a.held(handle(1));
  REQUIRE(held.size() == 1);
  CHECK(held[0].ip == ours.ip);
}

TEST_CASE("global allocator: crashes between writes leak nothing", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24")});
  auto a = c.node("n");
  SECTION("after the handle intent, before the block: GC removes the intent") {
    // The process "dies" at its first block write: no write after that happens either.
    bool dead = false;
    c.store.on_write = [&](const std::string& key) {
      if (dead || key.rfind("blocks/", 0) == 0) {
        dead = true;
        throw std::runtime_error("crash");
      }
    };
    CHECK_THROWS_WITH(a.assign(handle(1), {}), "crash");
    c.store.on_write = nullptr;
    CHECK(c.allocations().empty());
    // The affinity index entry and the handle intent remain, as after a kill -9.
    CHECK(c.store.list("affinity/n/p/", true).size() == 1);
    CHECK(c.has("handles/net/c1/eth0"));
    CHECK(a.held(handle(1)).empty());
    // The next ADD on the node completes the half-done claim: the block it names.
    auto idx = c.store.list("affinity/n/p/", true)[0].key;
    Assignment next = one(a, handle(2));
    CHECK(ipam::records::affinity_key("n", "p", next.block) == idx);
    // GC with an empty valid list: c1's stale record and c2 go.
    auto released = a.collect({"net", "n"}, [](const Handle&) { return false; }).released;
    CHECK(released.size() == 1);
    CHECK(c.allocations().empty());
    CHECK(c.store.list("handles/", true).empty());
  }
  SECTION("after the block write: DEL finds it") {
    int writes = 0;
    bool dead = false;
    c.store.on_write = [&](const std::string& key) {
      if (dead || (key.rfind("blocks/", 0) == 0 && ++writes == 2)) {
        dead = true;
        throw std::runtime_error("crash");
      }
    };
    one(a, handle(1));
    CHECK_THROWS(a.assign(handle(2), {}));  // fails at its block write...
    c.store.on_write = nullptr;
    CHECK(c.allocations().size() == 1);
    CHECK(a.release(handle(2)).empty());  // ...so nothing to release, but the record goes
    CHECK_FALSE(c.has("handles/net/c2/eth0"));
    CHECK(a.release(handle(1)).size() == 1);
    CHECK(c.allocations().empty());
  }
  SECTION("a handle record lost: GC still finds the allocation in the node's block") {
    Assignment x = one(a, handle(1));
    auto rec = c.store.get("handles/net/c1/eth0");
    REQUIRE(c.store.erase_if(rec->key, rec->revision));
    auto released = a.collect({"net", "n"}, [](const Handle&) { return false; }).released;
    REQUIRE(released.size() == 1);
    CHECK(released[0].address.ip == x.ip);
    CHECK(c.allocations().empty());
  }
}

TEST_CASE("global allocator: GC keeps valid handles and other nodes'", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/24")});
  auto a = c.node("n");
  auto b = c.node("m");
  one(a, handle(1));
  one(a, handle(2));
  one(b, handle(3));
  // A handle of another network on node n.
  a.assign(Handle{"net2", "c4", "eth0"}, {});
  auto released =
      a.collect({"net", "n"}, [](const Handle& h) { return h.container_id == "c1"; }).released;
  REQUIRE(released.size() == 1);
  auto all = c.allocations();
  CHECK(all.size() == 3);
  std::set<std::string> handles;
  for (auto& [k, v] : all) handles.insert(v);
  CHECK(handles == std::set<std::string>{"net/c1/eth0", "net/c3/eth0", "net2/c4/eth0"});
}

TEST_CASE("global allocator: STATUS reports an exhausted pool", "[global-ipam][allocator]") {
  Cluster c({pool("p", "10.0.0.0/30", 30)});  // .1 and .2 usable
  auto a = c.node("n");
  a.check_available();
  one(a, handle(1));
  a.check_available();
  one(a, handle(2));
  auto e = error_of([&] { a.check_available(); });
  CHECK(e.code() == ipam::kErrNoAddress);
  CHECK(e.msg() == "pool p exhausted");
}

TEST_CASE("global allocator: large IPv6 pools are claimed by probing", "[global-ipam][allocator]") {
  Cluster c({pool("v6", "fd00:10::/64")});
  auto a = c.node("n");
  Assignment x = one(a, handle(1));
  CHECK(x.block.prefix == 122);
  CHECK(x.ip.is_v6());
  auto counts = c.store.counts();
  CHECK(counts.lists <= 6);  // no listing of the 2^58 blocks
  for (int i = 2; i < 70; ++i) one(a, handle(i));
  CHECK(c.store.list("affinity/n/v6/", true).size() == 2);
}

TEST_CASE("global allocator: parallel nodes never share an address", "[global-ipam][allocator]") {
  // 8 threads x 4 node names allocate and release against one store.
  Cluster c({pool("p", "10.0.0.0/22")});  // 32 blocks of 32
  std::mutex mu;
  std::map<IpAddress, std::string> live;  // what the threads hold right now
  std::atomic<int> duplicates{0};
  std::atomic<int> borrowed{0};
  std::atomic<int> done{0};
  auto worker = [&](int t) {
    std::string node = "node-" + std::to_string(t % 4);
    auto alloc = c.node(node);
    std::vector<std::pair<Handle, IpAddress>> mine;
    for (int i = 0; i < 150; ++i) {
      Handle h{"net", "t" + std::to_string(t) + "-" + std::to_string(i), "eth0"};
      Assignment a = one(alloc, h);
      {
        std::lock_guard lock(mu);
        if (!live.emplace(a.ip, h.id()).second) ++duplicates;
      }
      if (a.borrowed) ++borrowed;
      mine.emplace_back(h, a.ip);
      if (i % 3 == 2) {  // release one of every three
        auto [rh, rip] = mine.front();
        mine.erase(mine.begin());
        {
          std::lock_guard lock(mu);
          live.erase(rip);
        }
        alloc.release(rh);
      }
    }
    ++done;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  CHECK(done == 8);
  CHECK(duplicates == 0);
  auto all = c.allocations();
  CHECK(all.size() == live.size());
  for (const auto& [addr, h] : live) CHECK(all.at(addr) == h);
  // Every allocation was taken by its thread's node, inside a block of that node unless
  // marked borrowed; every block is in its owner's index.
  int borrowed_in_store = 0;
  for (const auto& e : c.store.list("blocks/p/")) {
    Block b = Block::from_json(json::parse(e.value));
    CHECK(c.has(ipam::records::affinity_key(b.affinity, "p", b.cidr)));
    for (const auto& [ord, a] : b.allocations) {
      int t = std::stoi(a.handle.substr(a.handle.find("/t") + 2));
      CHECK(a.node == "node-" + std::to_string(t % 4));
      if (b.borrowed(a)) ++borrowed_in_store;
    }
  }
  // 32 blocks for 4 nodes needing about 7 each: borrowing is rare, if any.
  CHECK(borrowed_in_store <= borrowed);
}
