#include "ipam/global/records.h"

#include <stdexcept>

#include "ipam/global/block_layout.h"

namespace ipam::records {

using cni::IpAddress;
using cni::IpNet;

std::string pool_key(const std::string& pool) { return "pools/" + pool; }
std::string blocks_prefix(const std::string& pool) { return "blocks/" + pool + "/"; }
std::string block_key(const std::string& pool, const IpNet& block) {
  return blocks_prefix(pool) + cidr_key(block);
}
std::string affinity_prefix(const std::string& node) { return "affinity/" + node + "/"; }
std::string affinity_prefix(const std::string& node, const std::string& pool) {
  return affinity_prefix(node) + pool + "/";
}
std::string affinity_key(const std::string& node, const std::string& pool, const IpNet& block) {
  return affinity_prefix(node, pool) + cidr_key(block);
}
std::string handles_prefix(const std::string& network) { return "handles/" + network + "/"; }
std::string nodes_prefix() { return "nodes/"; }
std::string node_key(const std::string& node) { return nodes_prefix() + node; }

std::optional<Handle> Handle::parse(const std::string& id) {
  auto a = id.find('/');
  if (a == std::string::npos) return std::nullopt;
  auto b = id.find('/', a + 1);
  if (b == std::string::npos || id.find('/', b + 1) != std::string::npos) return std::nullopt;
  Handle h{id.substr(0, a), id.substr(a + 1, b - a - 1), id.substr(b + 1)};
  if (h.network.empty() || h.container_id.empty() || h.ifname.empty()) return std::nullopt;
  return h;
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
