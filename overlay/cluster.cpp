#include "overlay/cluster.h"

#include <nlohmann/json.hpp>

namespace overlay {

std::vector<std::string> cluster_prefixes(const std::vector<ipam::PoolConfig>& pools) {
  std::vector<std::string> out;
  for (const auto& p : pools) out.push_back(ipam::records::blocks_prefix(p.name));
  out.push_back(ipam::records::nodes_prefix());
  return out;
}

Cluster read_cluster(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& pools,
                     std::vector<std::string>* skipped) {
  std::vector<ipam::KvStore::Read> reads;
  for (const auto& prefix : cluster_prefixes(pools)) reads.push_back({prefix, true, false});
  const auto got = store.read_batch(reads);
  Cluster c;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool nodes = i + 1 == got.size();
    for (const auto& e : got[i]) {
      try {
        const auto j = nlohmann::json::parse(e.value);
        if (nodes) {
          c.nodes.push_back(ipam::records::NodeRecord::from_json(j));
        } else {
          c.blocks.push_back(ipam::Block::from_json(j));
        }
      } catch (const std::exception& ex) {
        if (skipped) skipped->push_back(e.key + ": " + ex.what());
      }
    }
  }
  return c;
}

}  // namespace overlay
