#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ipam/global/block_layout.h"
#include "libcni/core/ip.h"
#include "test/fuzz/fuzz_check.h"

// global-ipam's block arithmetic: three lines (a pool CIDR, a blockSize, an address). Whatever
// BlockLayout accepts must cut the pool into aligned blocks that hold their addresses, map
// each address to its block and ordinal and back, and probe every node's blocks inside the
// pool without repeating a block in the first 64 steps; keys of CIDRs must round-trip.
using strait::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> l =
      strait::fuzz::first_lines(std::string_view(reinterpret_cast<const char*>(data), size), 3);
  std::optional<cni::IpNet> pool = cni::IpNet::try_parse(l[0]);
  // The key of any CIDR without host bits parses back to it; one with host bits is no key.
  if (pool) {
    check(ipam::parse_cidr_key(ipam::cidr_key(*pool)) ==
              (pool->has_host_bits() ? std::nullopt : pool),
          "a key does not round-trip");
  }
  if (!pool || l[1].empty() || l[1].size() > 4 ||
      l[1].find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  std::optional<ipam::BlockLayout> layout;
  try {
    layout.emplace(*pool, std::stoi(l[1]));
  } catch (const std::invalid_argument&) {
    return 0;
  }
  check(layout->pool().contains(layout->pool().ip), "pool does not hold its own address");
  check(layout->count() >= 1, "no block");
  check(layout->addresses_per_block() >= 1 && layout->addresses_per_block() <= 4096,
        "block size out of 1..4096 addresses");

  // The first and last blocks, and the probe order of one node, stay inside the pool.
  const cni::Uint128 count = layout->count();
  for (cni::Uint128 i : {cni::Uint128{0}, count - 1}) {
    cni::IpNet b = layout->block(i);
    check(layout->is_block(b), "block(i) is not a block");
    check(layout->pool().contains(b.ip), "block outside the pool");
    check(layout->index_of(b.ip) == i, "index_of(block(i)) != i");
    check(ipam::parse_cidr_key(ipam::cidr_key(b)) == b, "block key does not round-trip");
  }
  const uint64_t h = ipam::node_pool_hash(l[2], "pool");
  std::set<cni::Uint128> probed;
  for (cni::Uint128 k = 0; k < count && k < 64; ++k) {
    cni::Uint128 p = layout->probe(h, k);
    check(p < count, "probe left the pool");
    check(probed.insert(p).second, "probe repeated a block");
  }

  std::optional<cni::IpAddress> ip = cni::IpAddress::try_parse(l[2]);
  if (!ip || !layout->pool().contains(*ip)) return 0;
  cni::IpNet b = layout->block_of(*ip);
  check(b.contains(*ip), "block_of(ip) does not hold ip");
  check(layout->is_block(b), "block_of(ip) is not a block");
  uint32_t ord = layout->ordinal(*ip);
  check(ord < layout->addresses_per_block(), "ordinal past the block");
  check(ipam::BlockLayout::address(b, ord) == *ip, "address(block, ordinal) != ip");
  return 0;
}
