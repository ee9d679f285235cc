#include "ipam/global/block.h"

#include <stdexcept>

namespace ipam {

using cni::IpAddress;

std::optional<uint32_t> Block::find_free(
    const std::function<bool(const IpAddress&)>& usable) const {
  uint32_t n = size();
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t ord = (next + i) % n;
    if (allocations.count(ord)) continue;
    if (usable(address(ord))) return ord;
  }
  return std::nullopt;
}

uint32_t Block::free_count(const std::function<bool(const IpAddress&)>& usable) const {
  uint32_t n = 0;
  for (uint32_t ord = 0; ord < size(); ++ord) {
    if (!allocations.count(ord) && usable(address(ord))) ++n;
  }
  return n;
}

uint64_t Block::assign(uint32_t ordinal, const std::string& handle, const std::string& node) {
  if (ordinal >= size()) {
    throw std::out_of_range("ordinal " + std::to_string(ordinal) + " outside " + cidr.str());
  }
  if (allocations.count(ordinal)) {
    throw std::logic_error(address(ordinal).str() + " is already allocated");
  }
  ++seq;
  allocations[ordinal] = BlockAllocation{handle, seq, node};
  empty_since.reset();
  next = (ordinal + 1) % size();
  return seq;
}

Block::ReleaseOutcome Block::release(uint32_t ordinal, const std::string& handle,
                                     std::optional<uint64_t> s) {
  auto it = allocations.find(ordinal);
  if (it == allocations.end()) return ReleaseOutcome::kNotAllocated;
  if (it->second.handle != handle) return ReleaseOutcome::kOtherHandle;
  if (s && it->second.seq != *s) return ReleaseOutcome::kBadSequence;
  allocations.erase(it);
  return ReleaseOutcome::kReleased;
}

std::vector<uint32_t> Block::ordinals_of(const std::string& handle) const {
  std::vector<uint32_t> out;
  for (const auto& [ord, a] : allocations) {
    if (a.handle == handle) out.push_back(ord);
  }
  return out;
}

nlohmann::json Block::to_json() const {
  nlohmann::json allocs = nlohmann::json::array();
  for (const auto& [ord, a] : allocations) {
    allocs.push_back({{"ordinal", ord}, {"handle", a.handle}, {"seq", a.seq}, {"node", a.node}});
  }
  nlohmann::json j = {{"cidr", cidr.str()}, {"pool", pool}, {"affinity", affinity},
                      {"seq", seq},         {"next", next}, {"allocations", allocs}};
  if (empty_since) j["emptySince"] = *empty_since;
  return j;
}

Block Block::from_json(const nlohmann::json& j) {
  try {
    Block b;
    auto cidr = cni::IpNet::try_parse(j.at("cidr").get<std::string>());
    if (!cidr || cidr->has_host_bits() || cidr->ip.bits() - cidr->prefix > 12) {
      throw std::invalid_argument("bad cidr " + j.at("cidr").dump());
    }
    b.cidr = *cidr;
    b.pool = j.at("pool").get<std::string>();
    b.affinity = j.value("affinity", "");
    b.seq = j.value("seq", uint64_t{0});
    b.next = j.value("next", uint32_t{0}) % b.size();
    if (j.contains("emptySince")) b.empty_since = j.at("emptySince").get<int64_t>();
    for (const auto& a : j.value("allocations", nlohmann::json::array())) {
      auto ord = a.at("ordinal").get<uint32_t>();
      if (ord >= b.size()) throw std::invalid_argument("ordinal " + std::to_string(ord));
      b.allocations[ord] = BlockAllocation{a.at("handle").get<std::string>(),
                                           a.at("seq").get<uint64_t>(), a.value("node", "")};
    }
    return b;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed block record: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("malformed block record: ") + e.what());
  }
}

}  // namespace ipam
