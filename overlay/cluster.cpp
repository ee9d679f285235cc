#include "overlay/cluster.h"

#include <iterator>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace overlay {

std::vector<std::string> cluster_prefixes(const std::vector<ipam::PoolConfig>& pools) {
  std::vector<std::string> out;
  for (const auto& p : pools) out.push_back(ipam::records::blocks_prefix(p.name));
  out.push_back(ipam::records::nodes_prefix());
  return out;
}

Cluster ClusterReader::read(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& pools,
                            std::vector<std::string>* skipped) {
  std::vector<ipam::KvStore::Read> reads;
  for (const auto& prefix : cluster_prefixes(pools)) reads.push_back({prefix, true, false});
  auto got = store.read_batch(reads);
  Cluster c;
  auto refresh = [skipped](const std::vector<ipam::KvEntry>& entries, auto& cache, auto& out,
                           auto decode) {
    std::remove_reference_t<decltype(cache)> kept;
    for (const auto& e : entries) {
      auto it = cache.find(e.key);
      if (it != cache.end() && it->second.revision == e.revision) {
        out.push_back(it->second.value);
        kept.insert(cache.extract(it));
        continue;
      }
      try {
        out.push_back(decode(nlohmann::json::parse(e.value)));
        kept[e.key] = {e.revision, out.back()};
      } catch (const std::exception& ex) {
        if (skipped) skipped->push_back(e.key + ": " + ex.what());
      }
    }
    cache.swap(kept);  // keys that are gone are forgotten
  };
  std::vector<ipam::KvEntry> blocks;
  for (size_t i = 0; i + 1 < got.size(); ++i) {
    blocks.insert(blocks.end(), std::make_move_iterator(got[i].begin()),
                  std::make_move_iterator(got[i].end()));
  }
  refresh(blocks, blocks_, c.blocks,
          [](const nlohmann::json& j) { return ipam::Block::from_json(j); });
  refresh(got.back(), nodes_, c.nodes,
          [](const nlohmann::json& j) { return ipam::records::NodeRecord::from_json(j); });
  return c;
}

Cluster read_cluster(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& pools,
                     std::vector<std::string>* skipped) {
  return ClusterReader{}.read(store, pools, skipped);
}

}  // namespace overlay
