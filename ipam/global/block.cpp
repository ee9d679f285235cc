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

nlohmann::json Block::to_compact_json() const {
  nlohmann::json allocs = nlohmann::json::array();
  for (const auto& [ord, a] : allocations) {
    nlohmann::json one = {ord, a.seq, a.handle};
    if (a.node != affinity) one.push_back(a.node);
    allocs.push_back(std::move(one));
  }
  nlohmann::json j = {{"v", 2},   {"c", cidr.str()}, {"p", pool},  {"n", affinity},
                      {"s", seq}, {"x", next},       {"a", allocs}};
  if (empty_since) j["e"] = *empty_since;
  return j;
}

std::string Block::encode(bool compact) const {
  return (compact ? to_compact_json() : to_json()).dump();
}

namespace {

// The member names of one stored form.
struct Form {
  const char* cidr;
  const char* pool;
  const char* affinity;
  const char* seq;
  const char* next;
  const char* empty_since;
  const char* allocations;
};
constexpr Form kVerbose{"cidr", "pool", "affinity", "seq", "next", "emptySince", "allocations"};
constexpr Form kCompact{"c", "p", "n", "s", "x", "e", "a"};

// Everything but the allocations, which `one` reads: (allocation) -> ordinal and record.
template <class One>
Block decode_form(const nlohmann::json& j, const Form& f, One one) {
  Block b;
  auto cidr = cni::IpNet::try_parse(j.at(f.cidr).get<std::string>());
  if (!cidr || cidr->has_host_bits() || cidr->ip.bits() - cidr->prefix > 12) {
    throw std::invalid_argument("bad cidr " + j.at(f.cidr).dump());
  }
  b.cidr = *cidr;
  b.pool = j.at(f.pool).get<std::string>();
  b.affinity = j.value(f.affinity, "");
  b.seq = j.value(f.seq, uint64_t{0});
  b.next = j.value(f.next, uint32_t{0}) % b.size();
  if (j.contains(f.empty_since)) b.empty_since = j.at(f.empty_since).get<int64_t>();
  for (const auto& a : j.value(f.allocations, nlohmann::json::array())) {
    auto [ord, record] = one(a, b);
    if (ord >= b.size()) throw std::invalid_argument("ordinal " + std::to_string(ord));
    b.allocations[ord] = std::move(record);
  }
  return b;
}

}  // namespace

Block Block::from_json(const nlohmann::json& j) {
  try {
    if (!j.contains("v")) {
      return decode_form(j, kVerbose, [](const nlohmann::json& a, const Block&) {
        return std::make_pair(a.at("ordinal").get<uint32_t>(),
                              BlockAllocation{a.at("handle").get<std::string>(),
                                              a.at("seq").get<uint64_t>(), a.value("node", "")});
      });
    }
    if (j.at("v").get<int>() != 2) {
      throw std::invalid_argument("unknown version " + j.at("v").dump());
    }
    if (!j.contains(kCompact.allocations)) throw std::invalid_argument("no allocations");
    return decode_form(j, kCompact, [](const nlohmann::json& a, const Block& b) {
      if (!a.is_array() || a.size() < 3 || a.size() > 4) {
        throw std::invalid_argument("allocation " + a.dump());
      }
      return std::make_pair(a[0].get<uint32_t>(),
                            BlockAllocation{a[2].get<std::string>(), a[1].get<uint64_t>(),
                                            a.size() == 4 ? a[3].get<std::string>() : b.affinity});
    });
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed block record: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("malformed block record: ") + e.what());
  }
}

std::optional<size_t> Block::count_allocations(std::string_view value) {
  // One pass over the text, strings skipped: the object is depth 1, its array member depth 2,
  // each allocation (an array or an object) opens depth 3.
  size_t count = 0;
  int depth = 0;
  int arrays = 0;  // array-valued members of the block
  bool in_string = false;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        ++depth;
        if (depth == 1 && c != '{') return std::nullopt;
        if (depth == 2) {
          if (c != '[' || ++arrays > 1) return std::nullopt;
        }
        if (depth == 3) ++count;
        break;
      case '}':
      case ']':
        if (--depth < 0) return std::nullopt;
        break;
      default:
        break;
    }
  }
  if (depth != 0 || in_string || arrays != 1) return std::nullopt;
  return count;
}

Block Block::decode(const std::string& value) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(value);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed block record: ") + e.what());
  }
  return from_json(j);
}

}  // namespace ipam
