#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "libcni/core/ip.h"

namespace ipam {

// Block sizes a pool may be cut into (Calico's limits): /20../32 for IPv4, /116../128 for IPv6,
// so a block never holds more than 4096 addresses. Defaults follow the clusters we serve
// (blockSize 27) and Calico for IPv6 (122).
inline constexpr int kMinBlockSizeV4 = 20;
inline constexpr int kMaxBlockSizeV4 = 32;
inline constexpr int kMinBlockSizeV6 = 116;
inline constexpr int kMaxBlockSizeV6 = 128;
inline constexpr int kDefaultBlockSizeV4 = 27;
inline constexpr int kDefaultBlockSizeV6 = 122;

// How a pool's CIDR is cut into equal, aligned blocks: block i covers
// [pool + i * block_addresses, pool + (i + 1) * block_addresses). Pure arithmetic, no state.
class BlockLayout {
 public:
  BlockLayout() = default;
  // Throws std::invalid_argument (message without the key: the config reader adds it) when the
  // pool has host bits, the block size is outside the family's limits, or a block is larger
  // than the pool ("blockSize 26 does not fit in 10.0.0.0/27").
  BlockLayout(const cni::IpNet& pool, int block_size);

  const cni::IpNet& pool() const { return pool_; }
  int block_size() const { return block_size_; }
  int family() const { return pool_.ip.family(); }
  // Number of blocks: 2^(block_size - pool prefix). The constructor refuses more than 2^100
  // blocks (an IPv6 /8 cut into /116s), so this never overflows.
  cni::Uint128 count() const { return cni::Uint128{1} << (block_size_ - pool_.prefix); }
  // Addresses per block: 2^(bits - block_size), at most 4096.
  uint32_t addresses_per_block() const { return 1u << (pool_.ip.bits() - block_size_); }

  // The i-th block (i < count()).
  cni::IpNet block(cni::Uint128 index) const;
  // Index of the block that holds `ip` (which must be inside the pool).
  cni::Uint128 index_of(const cni::IpAddress& ip) const;
  // The block that holds `ip`.
  cni::IpNet block_of(const cni::IpAddress& ip) const { return block(index_of(ip)); }
  // Whether `block` is one of the pool's blocks (aligned, right size, inside).
  bool is_block(const cni::IpNet& block) const;

  // Position of `ip` inside its block (0 .. addresses_per_block() - 1).
  uint32_t ordinal(const cni::IpAddress& ip) const;
  // The address at `ordinal` in `block`.
  static cni::IpAddress address(const cni::IpNet& block, uint32_t ordinal);

  // The k-th block of the probe order of a node: a permutation of all blocks that starts at a
  // node-specific block and strides by a node-specific odd step (any odd step generates the
  // whole group of a power-of-two size). Competing nodes thus try different blocks first
  // (Calico seeds its random block choice with the hostname for the same reason), and each
  // node still visits every block exactly once in count() steps.
  cni::Uint128 probe(uint64_t node_hash, cni::Uint128 k) const;

 private:
  cni::IpNet pool_;
  int block_size_ = 0;
};

// The seed of probe() for a node and a pool: cni::stable_hash64({node, pool}). It orders the
// free blocks a node tries first and where a borrower starts; nothing stored depends on it.
uint64_t node_pool_hash(const std::string& node, const std::string& pool);

// "10.0.0.32-27": a block (or any CIDR) as one path component, for store keys.
std::string cidr_key(const cni::IpNet& net);
// Inverse of cidr_key; nullopt when `key` is not one.
std::optional<cni::IpNet> parse_cidr_key(const std::string& key);

}  // namespace ipam
