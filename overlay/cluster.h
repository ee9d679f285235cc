#pragma once

#include <string>
#include <vector>

#include "ipam/global/block.h"
#include "ipam/global/config.h"
#include "ipam/global/records.h"
#include "ipam/global/store.h"

// The part of global-ipam's store the route agent follows: the blocks of the config's pools
// (their affinity and allocations, borrowed ones included) and every node record.
namespace overlay {

struct Cluster {
  std::vector<ipam::Block> blocks;
  std::vector<ipam::records::NodeRecord> nodes;
};

// One read of the store: a listing per pool and one of the node records (each a single
// round trip on etcd). A block or record that does not decode is skipped and logged by the
// caller through `skipped`.
Cluster read_cluster(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& pools,
                     std::vector<std::string>* skipped = nullptr);

// The store prefixes read_cluster reads (what a watch follows).
std::vector<std::string> cluster_prefixes(const std::vector<ipam::PoolConfig>& pools);

}  // namespace overlay
