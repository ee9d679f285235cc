#pragma once

#include <cstdint>
#include <map>
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

// Reads the cluster pass after pass, decoding only what changed: a key whose revision is the
// one it had at the previous read (revisions never repeat for a key, ipam/global/store.h) is
// taken from the previous read as decoded then. Decoding 1,000 blocks cost about as much as
// listing them (docs/benchmarks.md, the no-op pass). Forgets keys that are gone.
class ClusterReader {
 public:
  // One read of the store: a listing per pool and one of the node records (each a single
  // round trip on etcd). A block or record that does not decode is skipped and logged by the
  // caller through `skipped` (and decoded again next time).
  Cluster read(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& pools,
               std::vector<std::string>* skipped = nullptr);

 private:
  template <class T>
  struct Decoded {
    int64_t revision = 0;
    T value;
  };
  std::map<std::string, Decoded<ipam::Block>> blocks_;
  std::map<std::string, Decoded<ipam::records::NodeRecord>> nodes_;
};

// One read with nothing remembered (ClusterReader{}.read).
Cluster read_cluster(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& pools,
                     std::vector<std::string>* skipped = nullptr);

// The store prefixes read_cluster reads (what a watch follows).
std::vector<std::string> cluster_prefixes(const std::vector<ipam::PoolConfig>& pools);

}  // namespace overlay
