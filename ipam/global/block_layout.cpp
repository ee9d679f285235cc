#include "ipam/global/block_layout.h"

#include <optional>

#include "libcni/core/hash.h"

namespace ipam {

using cni::IpAddress;
using cni::IpNet;
using cni::Uint128;

namespace {

// More blocks than this would make no sense (and count() must fit in 128 bits).
constexpr int kMaxBlockBits = 100;

}  // namespace

BlockLayout::BlockLayout(const IpNet& pool, int block_size) : pool_(pool), block_size_(block_size) {
  if (pool.has_host_bits()) {
    throw std::invalid_argument(pool.str() + " has host bits set (network is " +
                                pool.network().str() + ")");
  }
  bool v4 = pool.ip.is_v4();
  int min = v4 ? kMinBlockSizeV4 : kMinBlockSizeV6;
  int max = v4 ? kMaxBlockSizeV4 : kMaxBlockSizeV6;
  if (block_size < min || block_size > max) {
    throw std::invalid_argument("blockSize " + std::to_string(block_size) + " is outside " +
                                std::to_string(min) + ".." + std::to_string(max) + " for an " +
                                (v4 ? "IPv4" : "IPv6") + " pool");
  }
  if (block_size < pool.prefix) {
    throw std::invalid_argument("blockSize " + std::to_string(block_size) + " does not fit in " +
                                pool.str() + " (a block must not be larger than its pool)");
  }
  if (block_size - pool.prefix > kMaxBlockBits) {
    throw std::invalid_argument(pool.str() + " cut into /" + std::to_string(block_size) +
                                " blocks makes more than 2^" + std::to_string(kMaxBlockBits) +
                                " blocks");
  }
}

IpNet BlockLayout::block(Uint128 index) const {
  int host_bits = pool_.ip.bits() - block_size_;
  Uint128 base = pool_.ip.as_u128() + (index << host_bits);
  return IpNet{IpAddress::from_u128(family(), base), block_size_};
}

Uint128 BlockLayout::index_of(const IpAddress& ip) const {
  int host_bits = pool_.ip.bits() - block_size_;
  return (ip - pool_.ip) >> host_bits;
}

bool BlockLayout::is_block(const IpNet& b) const {
  return b.prefix == block_size_ && !b.has_host_bits() && pool_.contains(b.ip);
}

uint32_t BlockLayout::ordinal(const IpAddress& ip) const {
  return static_cast<uint32_t>((ip - pool_.ip) & (addresses_per_block() - 1));
}

IpAddress BlockLayout::address(const IpNet& block, uint32_t ordinal) {
  return block.ip + static_cast<int64_t>(ordinal);
}

Uint128 BlockLayout::probe(uint64_t node_hash, Uint128 k) const {
  Uint128 mask = count() - 1;
  Uint128 start = node_hash & mask;
  // The step comes from the other half of the hash; odd so that it generates Z/count().
  // Products wrap modulo 2^128, which count() divides, so the result is exact modulo count().
  Uint128 step = (Uint128{node_hash >> 32} * 2654435761u) | 1;
  return (start + k * step) & mask;
}

uint64_t node_pool_hash(const std::string& node, const std::string& pool) {
  return cni::stable_hash64({node, pool});
}

std::string cidr_key(const IpNet& net) { return net.ip.str() + "-" + std::to_string(net.prefix); }

std::optional<IpNet> parse_cidr_key(const std::string& key) {
  auto dash = key.rfind('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string text = key;
  text[dash] = '/';
  auto net = IpNet::try_parse(text);
  if (!net || net->has_host_bits()) return std::nullopt;
  // Only the canonical spelling names a key: "10.0.0.32-27", not "10.0.0.032-27".
  if (cidr_key(*net) != key) return std::nullopt;
  return net;
}

}  // namespace ipam
