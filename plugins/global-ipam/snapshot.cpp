#include "plugins/global-ipam/snapshot.h"

#include <algorithm>
#include <tuple>

#include <nlohmann/json.hpp>

#include "ipam/global/records.h"

namespace global_ipam::cli {

using nlohmann::json;
namespace records = ipam::records;

Snapshot::Snapshot(ipam::KvStore& store, std::vector<ipam::PoolConfig> configured)
    : pools_(std::move(configured)) {
  for (const auto& e : store.list(records::pools_prefix())) {
    auto name = records::parse_pool_key(e.key);
    if (!name) {
      malformed_.push_back(e.key);
      continue;
    }
    if (pool(*name)) continue;
    auto rec = records::PoolRecord::from_json(json::parse(e.value));
    ipam::PoolConfig p;
    p.name = *name;
    p.layout = ipam::BlockLayout(rec.cidr, rec.block_size);
    p.range = ipam::Range::make(rec.cidr, std::nullopt, std::nullopt, rec.cidr.ip);
    pools_.push_back(std::move(p));
  }
  for (auto& e : store.list(records::blocks_prefix())) {
    if (!records::parse_block_key(e.key)) {
      malformed_.push_back(e.key);
      continue;
    }
    LoadedBlock lb;
    lb.key = e.key;
    lb.block = ipam::Block::decode(e.value);
    blocks_.push_back(std::move(lb));
  }
  for (auto& b : blocks_) b.pool = pool(b.block.pool);
  // By pool, then by address (keys sort as text: 10.0.10.0 before 10.0.2.0).
  std::sort(blocks_.begin(), blocks_.end(), [](const LoadedBlock& a, const LoadedBlock& b) {
    return std::tie(a.block.pool, a.block.cidr.ip) < std::tie(b.block.pool, b.block.cidr.ip);
  });
}

const ipam::PoolConfig* Snapshot::pool(const std::string& name) const {
  for (const auto& p : pools_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

uint32_t Snapshot::usable_in(const LoadedBlock& b) {
  if (!b.pool) return b.block.size();
  uint32_t n = 0;
  for (uint32_t o = 0; o < b.block.size(); ++o) n += b.pool->usable(b.block.address(o));
  return n;
}

}  // namespace global_ipam::cli
