#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ipam/global/block.h"
#include "ipam/global/config.h"
#include "ipam/global/store.h"

namespace global_ipam::cli {

struct LoadedBlock {
  std::string key;
  ipam::Block block;
  const ipam::PoolConfig* pool = nullptr;  // null: a pool neither configured nor recorded
};

// The pools and blocks of a store, read once for the operator's reports: the configured
// pools, plus the pools recorded in the store that the config does not define; every block,
// by pool and then by address. Keys under pools/ and blocks/ that are not keys of their
// folder (records::parse_*) are kept aside, for `check` to report.
class Snapshot {
 public:
  Snapshot(ipam::KvStore& store, std::vector<ipam::PoolConfig> configured);
  Snapshot(const Snapshot&) = delete;  // blocks point into pools_
  Snapshot& operator=(const Snapshot&) = delete;

  const ipam::PoolConfig* pool(const std::string& name) const;
  const std::vector<ipam::PoolConfig>& pools() const { return pools_; }
  const std::vector<LoadedBlock>& blocks() const { return blocks_; }
  const std::vector<std::string>& malformed_keys() const { return malformed_; }

  // Addresses of the block its pool may hand out (all of them for an unknown pool).
  static uint32_t usable_in(const LoadedBlock& b);

 private:
  std::vector<ipam::PoolConfig> pools_;
  std::vector<LoadedBlock> blocks_;
  std::vector<std::string> malformed_;
};

}  // namespace global_ipam::cli
