#include "ipam/global/records.h"

#include <stdexcept>

#include "ipam/global/block_layout.h"

namespace ipam::records {

using cni::IpAddress;
using cni::IpNet;

std::string pools_prefix() { return "pools/"; }
std::string pool_key(const std::string& pool) { return pools_prefix() + pool; }
std::string blocks_prefix() { return "blocks/"; }
std::string blocks_prefix(const std::string& pool) { return blocks_prefix() + pool + "/"; }
std::string block_key(const std::string& pool, const IpNet& block) {
  return blocks_prefix(pool) + cidr_key(block);
}
std::string affinity_prefix() { return "affinity/"; }
std::string affinity_prefix(const std::string& node) { return affinity_prefix() + node + "/"; }
std::string affinity_prefix(const std::string& node, const std::string& pool) {
  return affinity_prefix(node) + pool + "/";
}
std::string affinity_key(const std::string& node, const std::string& pool, const IpNet& block) {
  return affinity_prefix(node, pool) + cidr_key(block);
}
std::string handles_prefix() { return "handles/"; }
std::string handles_prefix(const std::string& network) { return handles_prefix() + network + "/"; }
std::string nodes_prefix() { return "nodes/"; }
std::string node_key(const std::string& node) { return nodes_prefix() + node; }
std::string dead_node_marks_prefix() { return "gc/dead-nodes/"; }
std::string dead_node_mark_key(const std::string& node) { return dead_node_marks_prefix() + node; }

namespace {

// The components of `key` when it has exactly `n` and each is non-empty; `folder` (when
// given) must be the first.
std::optional<std::vector<std::string>> split(const std::string& key, size_t n,
                                              const char* folder = nullptr) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    size_t slash = key.find('/', pos);
    std::string part = key.substr(pos, slash == std::string::npos ? slash : slash - pos);
    if (part.empty() || parts.size() == n) return std::nullopt;
    parts.push_back(std::move(part));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  if (parts.size() != n || (folder && parts[0] != folder)) return std::nullopt;
  return parts;
}

}  // namespace

std::optional<std::string> parse_pool_key(const std::string& key) {
  auto p = split(key, 2, "pools");
  if (!p) return std::nullopt;
  return (*p)[1];
}

std::optional<BlockKey> parse_block_key(const std::string& key) {
  auto p = split(key, 3, "blocks");
  if (!p) return std::nullopt;
  auto cidr = parse_cidr_key((*p)[2]);
  if (!cidr) return std::nullopt;
  return BlockKey{(*p)[1], *cidr};
}

std::optional<AffinityKey> parse_affinity_key(const std::string& key) {
  auto p = split(key, 4, "affinity");
  if (!p) return std::nullopt;
  auto cidr = parse_cidr_key((*p)[3]);
  if (!cidr) return std::nullopt;
  return AffinityKey{(*p)[1], (*p)[2], *cidr};
}

std::optional<Handle> parse_handle_key(const std::string& key) {
  auto p = split(key, 4, "handles");
  if (!p) return std::nullopt;
  return Handle{(*p)[1], (*p)[2], (*p)[3]};
}

std::optional<std::string> parse_node_key(const std::string& key) {
  auto p = split(key, 2, "nodes");
  if (!p) return std::nullopt;
  return (*p)[1];
}

std::optional<std::string> parse_dead_node_mark_key(const std::string& key) {
  auto p = split(key, 3, "gc");
  if (!p || (*p)[1] != "dead-nodes") return std::nullopt;
  return (*p)[2];
}

std::optional<Handle> Handle::parse(const std::string& id) {
  auto p = split(id, 3);
  if (!p) return std::nullopt;
  return Handle{(*p)[0], (*p)[1], (*p)[2]};
}

namespace {

template <class Fn>
auto decode(const char* what, Fn fn) {
  try {
    return fn();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed ") + what + " record: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("malformed ") + what + " record: " + e.what());
  }
}

}  // namespace

nlohmann::json PoolRecord::to_json() const {
  return {{"cidr", cidr.str()}, {"blockSize", block_size}};
}

PoolRecord PoolRecord::from_json(const nlohmann::json& j) {
  return decode("pool", [&] {
    return PoolRecord{IpNet::parse(j.at("cidr").get<std::string>()), j.at("blockSize").get<int>()};
  });
}

nlohmann::json HandleRecord::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : entries) {
    list.push_back(
        {{"pool", e.pool}, {"block", e.block.str()}, {"ip", e.ip.str()}, {"seq", e.seq}});
  }
  return {{"node", node}, {"entries", list}};
}

HandleRecord HandleRecord::from_json(const nlohmann::json& j) {
  return decode("handle", [&] {
    HandleRecord r;
    r.node = j.at("node").get<std::string>();
    for (const auto& e : j.at("entries")) {
      r.entries.push_back(HandleEntry{
          e.at("pool").get<std::string>(), IpNet::parse(e.at("block").get<std::string>()),
          IpAddress::parse(e.at("ip").get<std::string>()), e.at("seq").get<uint64_t>()});
    }
    return r;
  });
}

nlohmann::json DeadNodeMark::to_json() const {
  return {{"firstSeen", first_seen}, {"revision", revision}};
}

DeadNodeMark DeadNodeMark::from_json(const nlohmann::json& j) {
  return decode("dead node mark", [&] {
    return DeadNodeMark{j.at("firstSeen").get<int64_t>(), j.at("revision").get<int64_t>()};
  });
}

nlohmann::json NodeRecord::to_json() const {
  nlohmann::json j = {{"name", name}, {"attributes", attributes}};
  j["address"] = address ? address->str() : "";
  return j;
}

NodeRecord NodeRecord::from_json(const nlohmann::json& j) {
  return decode("node", [&] {
    NodeRecord r;
    r.name = j.at("name").get<std::string>();
    std::string addr = j.value("address", "");
    if (!addr.empty()) r.address = IpAddress::parse(addr);
    r.attributes = j.value("attributes", std::map<std::string, std::string>{});
    return r;
  });
}

}  // namespace ipam::records
