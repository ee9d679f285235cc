#include "ipam/global/nodes.h"

#include <stdexcept>

#include "libcni/core/error.h"

namespace ipam::nodes {

using records::NodeRecord;

namespace {

constexpr int kAttempts = 100;

NodeRecord decode(const KvEntry& e) {
  return NodeRecord::from_json(nlohmann::json::parse(e.value));
}

}  // namespace

std::optional<NodeRecord> get(KvStore& store, const std::string& name) {
  auto e = store.get(records::node_key(name));
  if (!e) return std::nullopt;
  return decode(*e);
}

std::vector<NodeRecord> list(KvStore& store) {
  std::vector<NodeRecord> out;
  for (const auto& e : store.list(records::nodes_prefix())) {
    if (records::parse_node_key(e.key)) out.push_back(decode(e));  // etcd may hold nodes/a/b
  }
  return out;
}

NodeRecord put(KvStore& store, const NodeRecord& node) {
  std::string key = records::node_key(node.name);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto e = store.get(key);
    NodeRecord rec = e ? decode(*e) : NodeRecord{node.name, std::nullopt, {}};
    if (node.address) rec.address = node.address;
    for (const auto& [k, v] : node.attributes) {
      if (v.empty()) {
        rec.attributes.erase(k);
      } else {
        rec.attributes[k] = v;
      }
    }
    if (store.put_if(key, rec.to_json().dump(), e ? e->revision : 0)) return rec;
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up writing " + key + " after " +
                                               std::to_string(kAttempts) + " conflicting writes");
}

bool remove(KvStore& store, const std::string& name) {
  std::string key = records::node_key(name);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto e = store.get(key);
    if (!e) return false;
    if (store.erase_if(key, e->revision)) return true;
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up removing " + key);
}

}  // namespace ipam::nodes
