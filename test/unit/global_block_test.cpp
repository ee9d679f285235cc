#include <set>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/block_layout.h"
#include "ipam/global/records.h"

using cni::IpAddress;
using cni::IpNet;
using ipam::Block;
using ipam::BlockLayout;

namespace {

IpAddress ip(const char* s) { return IpAddress::parse(s); }
IpNet net(const char* s) { return IpNet::parse(s); }

std::string invalid(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST_CASE("block layout of an IPv4 pool", "[global-ipam][block]") {
  BlockLayout l(net("10.16.0.0/16"), 27);
  CHECK(l.count() == 2048);
  CHECK(l.addresses_per_block() == 32);
  CHECK(l.block(0) == net("10.16.0.0/27"));
  CHECK(l.block(1) == net("10.16.0.32/27"));
  CHECK(l.block(2047) == net("10.16.255.224/27"));
  CHECK(l.index_of(ip("10.16.0.31")) == 0);
  CHECK(l.index_of(ip("10.16.0.32")) == 1);
  CHECK(l.index_of(ip("10.16.255.255")) == 2047);
  CHECK(l.block_of(ip("10.16.1.77")) == net("10.16.1.64/27"));
  CHECK(l.ordinal(ip("10.16.1.77")) == 13);
  CHECK(BlockLayout::address(net("10.16.1.64/27"), 13) == ip("10.16.1.77"));
  CHECK(l.is_block(net("10.16.1.64/27")));
  CHECK_FALSE(l.is_block(net("10.16.1.64/26")));  // wrong size
  CHECK_FALSE(l.is_block(net("10.17.0.0/27")));   // outside
  CHECK_FALSE(l.is_block(net("10.16.1.65/27")));  // not aligned
  CHECK_FALSE(l.is_block(net("fd00::/122")));     // other family

  BlockLayout whole(net("192.0.2.0/27"), 27);  // a pool of exactly one block
  CHECK(whole.count() == 1);
  CHECK(whole.block(0) == net("192.0.2.0/27"));
  BlockLayout singles(net("192.0.2.0/30"), 32);
  CHECK(singles.count() == 4);
  CHECK(singles.block(3) == net("192.0.2.3/32"));
  CHECK(singles.addresses_per_block() == 1);
}

TEST_CASE("block layout of an IPv6 pool", "[global-ipam][block]") {
  BlockLayout l(net("fd00:10::/64"), 122);
  CHECK(l.count() == (cni::Uint128{1} << 58));
  CHECK(l.addresses_per_block() == 64);
  CHECK(l.block(0) == net("fd00:10::/122"));
  CHECK(l.block(1) == net("fd00:10::40/122"));
  cni::Uint128 last = l.count() - 1;
  CHECK(l.block(last) == net("fd00:10::ffff:ffff:ffff:ffc0/122"));
  CHECK(l.index_of(ip("fd00:10::ffff:ffff:ffff:ffff")) == last);
  CHECK(l.index_of(ip("fd00:10::1:0")) == 1024);
  CHECK(l.block_of(ip("fd00:10::1:5")) == net("fd00:10::1:0/122"));
  CHECK(l.ordinal(ip("fd00:10::1:5")) == 5);
  CHECK(BlockLayout::address(net("fd00:10::1:0/122"), 63) == ip("fd00:10::1:3f"));

  BlockLayout big(net("fd00::/48"), 116);
  CHECK(big.addresses_per_block() == 4096);
  CHECK(big.count() == (cni::Uint128{1} << 68));
}

TEST_CASE("block layout refuses sizes that do not fit", "[global-ipam][block]") {
  CHECK(invalid([] { BlockLayout(net("10.0.0.0/27"), 26); }) ==
        "blockSize 26 does not fit in 10.0.0.0/27 (a block must not be larger than its pool)");
  CHECK(invalid([] { BlockLayout(net("10.0.0.0/8"), 19); }) ==
        "blockSize 19 is outside 20..32 for an IPv4 pool");
  CHECK(invalid([] { BlockLayout(net("10.0.0.0/8"), 33); }) ==
        "blockSize 33 is outside 20..32 for an IPv4 pool");
  CHECK(invalid([] { BlockLayout(net("fd00::/64"), 115); }) ==
        "blockSize 115 is outside 116..128 for an IPv6 pool");
  CHECK(invalid([] { BlockLayout(net("10.0.0.1/24"), 27); }) ==
        "10.0.0.1/24 has host bits set (network is 10.0.0.0/24)");
  CHECK(invalid([] { BlockLayout(net("fd00::/8"), 116); }).find("more than 2^100 blocks") !=
        std::string::npos);
}

TEST_CASE("probe order is a per-node permutation of the blocks", "[global-ipam][block]") {
  BlockLayout l(net("10.0.0.0/18"), 27);  // 512 blocks
  uint64_t ha = ipam::node_pool_hash("node-a", "pool");
  uint64_t hb = ipam::node_pool_hash("node-b", "pool");
  CHECK(ha != hb);
  CHECK(ipam::node_pool_hash("node-a", "pool") == ha);  // deterministic
  CHECK(ipam::node_pool_hash("node-ap", "ool") != ha);  // separator matters
  std::set<cni::Uint128> seen;
  for (cni::Uint128 k = 0; k < l.count(); ++k) seen.insert(l.probe(ha, k));
  CHECK(seen.size() == 512);
  CHECK(*seen.rbegin() == 511);
  // Different nodes start at different blocks (for these names; in general rarely equal).
  CHECK(l.probe(ha, 0) != l.probe(hb, 0));
  // Four nodes' first choices: all different.
  std::set<cni::Uint128> firsts;
  for (const char* n : {"n0", "n1", "n2", "n3"}) {
    firsts.insert(l.probe(ipam::node_pool_hash(n, "pool"), 0));
  }
  CHECK(firsts.size() == 4);
  // A pool of one block: always block 0.
  BlockLayout one(net("192.0.2.0/27"), 27);
  CHECK(one.probe(ha, 0) == 0);
  CHECK(one.probe(ha, 5) == 0);
}

TEST_CASE("cidr keys", "[global-ipam][block]") {
  CHECK(ipam::cidr_key(net("10.0.0.32/27")) == "10.0.0.32-27");
  CHECK(ipam::cidr_key(net("fd00::40/122")) == "fd00::40-122");
  CHECK(ipam::parse_cidr_key("10.0.0.32-27") == net("10.0.0.32/27"));
  CHECK(ipam::parse_cidr_key("fd00::40-122") == net("fd00::40/122"));
  CHECK_FALSE(ipam::parse_cidr_key("10.0.0.33-27"));  // host bits
  CHECK_FALSE(ipam::parse_cidr_key("10.0.0.32"));
  CHECK_FALSE(ipam::parse_cidr_key("10.0.0.032-27"));
  CHECK_FALSE(ipam::parse_cidr_key("x-27"));
}

TEST_CASE("block record: assign, release, sequence numbers", "[global-ipam][block]") {
  Block b;
  b.cidr = net("10.0.0.32/27");
  b.pool = "p";
  b.affinity = "node-a";
  auto all = [](const IpAddress&) { return true; };
  CHECK(b.size() == 32);
  CHECK(b.free_count(all) == 32);
  CHECK(b.find_free(all) == 0u);
  CHECK(b.assign(0, "net/c1/eth0", "node-a") == 1);
  CHECK(b.assign(5, "net/c2/eth0", "node-b") == 2);
  CHECK(b.next == 6);
  CHECK(b.find_free(all) == 6u);
  CHECK(b.free_count(all) == 30);
  CHECK_FALSE(b.borrowed(b.allocations.at(0)));
  CHECK(b.borrowed(b.allocations.at(5)));
  CHECK(b.ordinals_of("net/c2/eth0") == std::vector<uint32_t>{5});
  CHECK_THROWS_AS(b.assign(5, "x/y/z", "node-a"), std::logic_error);

  using R = Block::ReleaseOutcome;
  CHECK(b.release(5, "net/c1/eth0", std::nullopt) == R::kOtherHandle);
  CHECK(b.release(5, "net/c2/eth0", 1) == R::kBadSequence);
  CHECK(b.allocations.count(5));
  CHECK(b.release(5, "net/c2/eth0", 2) == R::kReleased);
  CHECK(b.release(5, "net/c2/eth0", 2) == R::kNotAllocated);
  // Given again, the address gets a new number: the old one no longer releases it.
  CHECK(b.assign(5, "net/c2/eth0", "node-a") == 3);
  CHECK(b.release(5, "net/c2/eth0", 2) == R::kBadSequence);

  // The search wraps around and skips what `usable` refuses.
  for (uint32_t i = 6; i < 32; ++i) b.assign(i, "h/" + std::to_string(i) + "/e", "node-a");
  CHECK(b.find_free(all) == 1u);
  CHECK(b.find_free([](const IpAddress& a) { return a != IpAddress::parse("10.0.0.33"); }) == 2u);

  // JSON round trip.
  Block c = Block::from_json(nlohmann::json::parse(b.to_json().dump()));
  CHECK(c == b);
  CHECK_THROWS_AS(Block::from_json(nlohmann::json{{"cidr", "10.0.0.0/8"}, {"pool", "p"}}),
                  std::invalid_argument);  // a "block" of 2^24 addresses
  CHECK_THROWS_AS(Block::from_json(nlohmann::json{{"pool", "p"}}), std::invalid_argument);

  // The compact form round-trips too, and decode() reads either.
  b.empty_since = 1234;
  CHECK(Block::decode(b.encode(true)) == b);
  CHECK(Block::decode(b.encode(false)) == b);
  CHECK(b.encode(true).size() * 2 < b.encode(false).size());
  CHECK_THROWS_AS(Block::decode("{not json"), std::invalid_argument);
}

TEST_CASE("block record: the compact form, and the verbose one of earlier versions",
          "[global-ipam][block]") {
  // A block as global-ipam wrote it before the compact form (every store), read as it was.
  const std::string verbose =
      R"({"affinity":"node-a","allocations":[{"handle":"net/c1/eth0","node":"node-a",)"
      R"("ordinal":1,"seq":1},{"handle":"net/c2/eth0","node":"node-b","ordinal":5,"seq":2}],)"
      R"("cidr":"10.0.0.32/27","next":6,"pool":"p","seq":2})";
  Block b = Block::decode(verbose);
  CHECK(b.cidr == net("10.0.0.32/27"));
  CHECK(b.affinity == "node-a");
  CHECK(b.seq == 2);
  CHECK(b.next == 6);
  REQUIRE(b.allocations.size() == 2);
  CHECK(b.allocations.at(1) == ipam::BlockAllocation{"net/c1/eth0", 1, "node-a"});
  CHECK(b.allocations.at(5) == ipam::BlockAllocation{"net/c2/eth0", 2, "node-b"});
  CHECK_FALSE(b.empty_since);
  CHECK(b.encode(false) == verbose);  // rewritten verbose, it is what it was

  // Compact: the node only for the borrowed address.
  nlohmann::json c = nlohmann::json::parse(b.encode(true));
  CHECK(c == nlohmann::json::parse(R"({"v":2,"c":"10.0.0.32/27","p":"p","n":"node-a","s":2,"x":6,)"
                                   R"("a":[[1,1,"net/c1/eth0"],[5,2,"net/c2/eth0","node-b"]]})"));
  // A reader of the verbose form only (an earlier version) finds no "cidr" and refuses the
  // block rather than read it as one without allocations.
  CHECK_FALSE(c.contains("cidr"));
  CHECK_FALSE(c.contains("allocations"));

  // Allocations counted without decoding, in either form; strings may hold brackets.
  CHECK(Block::count_allocations(b.encode(true)) == 2u);
  CHECK(Block::count_allocations(verbose) == 2u);
  b.allocations[9] = ipam::BlockAllocation{"n[et/c{\\\"]/e", 3, "node-a"};
  CHECK(Block::count_allocations(b.encode(true)) == 3u);
  CHECK(Block::count_allocations(b.encode(false)) == 3u);
  CHECK(Block::decode(b.encode(true)) == b);
  b.allocations.clear();
  CHECK(Block::count_allocations(b.encode(true)) == 0u);
  CHECK_FALSE(Block::count_allocations("{\"a\":[[1,1,\"x\"]"));  // cut short
  CHECK_FALSE(Block::count_allocations("[]"));
  CHECK_FALSE(Block::count_allocations(R"({"c":"10.0.0.32/27"})"));  // no array
  CHECK_FALSE(Block::count_allocations(R"({"a":[],"b":[]})"));       // two

  // What is wrong with a compact block is named.
  auto bad = [](const char* text) { return invalid([&] { Block::decode(text); }); };
  CHECK_THAT(bad(R"({"v":3,"c":"10.0.0.32/27","p":"p","a":[]})"),
             Catch::Contains("malformed block record: unknown version 3"));
  CHECK_THAT(bad(R"({"v":2,"c":"10.0.0.32/27","p":"p","a":[[40,1,"n/c/e"]]})"),
             Catch::Contains("ordinal 40"));
  CHECK_THAT(bad(R"({"v":2,"c":"10.0.0.32/27","p":"p","a":[[1,1]]})"),
             Catch::Contains("allocation [1,1]"));
  CHECK_THAT(bad(R"({"v":2,"c":"10.0.0.33/27","p":"p","a":[]})"), Catch::Contains("bad cidr"));
  CHECK_THAT(bad(R"({"v":2,"c":"10.0.0.32/27","a":[]})"),
             Catch::Contains("malformed block record"));
}

TEST_CASE("global records: keys, handles, nodes", "[global-ipam][block]") {
  using namespace ipam::records;
  CHECK(block_key("p1", net("10.0.0.32/27")) == "blocks/p1/10.0.0.32-27");
  CHECK(affinity_key("n1", "p1", net("10.0.0.32/27")) == "affinity/n1/p1/10.0.0.32-27");
  Handle h{"net", "abc", "eth0"};
  CHECK(h.id() == "net/abc/eth0");
  CHECK(h.key() == "handles/net/abc/eth0");
  CHECK(Handle::parse("net/abc/eth0") == h);
  CHECK_FALSE(Handle::parse("net/abc"));
  CHECK_FALSE(Handle::parse("net/abc/eth0/x"));
  CHECK_FALSE(Handle::parse("net//eth0"));

  NodeRecord n{"n1", IpAddress::parse("198.51.100.7"), {{"vtepMAC", "02:00:00:00:00:01"}}};
  CHECK(NodeRecord::from_json(nlohmann::json::parse(n.to_json().dump())) == n);
  NodeRecord bare{"n2", std::nullopt, {}};
  CHECK(NodeRecord::from_json(bare.to_json()) == bare);

  HandleRecord r{"n1", {{"p1", net("10.0.0.32/27"), IpAddress::parse("10.0.0.40"), 7}}};
  HandleRecord r2 = HandleRecord::from_json(r.to_json());
  CHECK(r2.node == "n1");
  CHECK(r2.entries == r.entries);
  CHECK_THROWS_AS(HandleRecord::from_json(nlohmann::json{{"node", 1}}), std::invalid_argument);
}

TEST_CASE("global records: keys parse back; malformed keys are refused, not misread",
          "[global-ipam][block]") {
  using namespace ipam::records;
  CHECK(parse_pool_key(pool_key("p1")) == "p1");
  CHECK(parse_block_key(block_key("p1", net("10.0.0.32/27"))) ==
        BlockKey{"p1", net("10.0.0.32/27")});
  CHECK(parse_affinity_key(affinity_key("n1", "p1", net("fd00::40/122"))) ==
        AffinityKey{"n1", "p1", net("fd00::40/122")});
  CHECK(parse_handle_key(Handle{"net", "abc", "eth0"}.key()) == Handle{"net", "abc", "eth0"});
  CHECK(parse_node_key(node_key("n1")) == "n1");
  CHECK(dead_node_mark_key("n1") == "gc/dead-nodes/n1");
  CHECK(parse_dead_node_mark_key(dead_node_mark_key("n1")) == "n1");
  for (const char* bad : {"gc/dead-nodes", "gc/dead-nodes/", "gc/other/n1", "gc/dead-nodes/a/b"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_dead_node_mark_key(bad));
  }
  // Offsets into a key without its '/' would have wrapped around and read garbage names.
  for (const char* bad : {"", "pools", "pools/", "pools//x", "pools/a/b", "nodes/p1", "x"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_pool_key(bad));
  }
  for (const char* bad : {"", "nodes", "nodes/", "nodes/a/b", "pools/n1", "nodes//"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_node_key(bad));
  }
  for (const char* bad :
       {"blocks", "blocks/p1", "blocks/p1/", "blocks//10.0.0.32-27", "blocks/p1/10.0.0.32",
        "blocks/p1/10.0.0.33-27", "blocks/p1/10.0.0.032-27", "blocks/p1/10.0.0.32-27/x",
        "affinity/p1/10.0.0.32-27"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_block_key(bad));
  }
  for (const char* bad :
       {"affinity", "affinity/n1", "affinity/n1/p1", "affinity/n1/p1/", "affinity/n1//10.0.0.32-27",
        "affinity//p1/10.0.0.32-27", "affinity/n1/p1/garbage", "affinity/n1/p1/10.0.0.32-27/x",
        "blocks/n1/p1/10.0.0.32-27"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_affinity_key(bad));
  }
  for (const char* bad : {"handles", "handles/net", "handles/net/c1", "handles/net/c1/",
                          "handles/net//eth0", "handles/net/c1/eth0/x", "nodes/net/c1/eth0"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_handle_key(bad));
  }
}
