#include "test/support/memory_store.h"

#include "libcni/core/error.h"

namespace ipam {

std::optional<KvEntry> MemoryStore::get(const std::string& key) {
  std::lock_guard lock(mu_);
  ++counts_.gets;
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::vector<KvEntry> MemoryStore::list(const std::string& prefix, bool keys_only) {
  std::lock_guard lock(mu_);
  ++counts_.lists;
  std::vector<KvEntry> out;
  for (auto it = data_.lower_bound(prefix); it != data_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->second);
    if (keys_only) out.back().value.clear();
  }
  return out;
}

void MemoryStore::before_write(const std::string& key) {
  if (on_write) on_write(key);
  std::lock_guard lock(mu_);
  if (fail_writes_ > 0) {
    --fail_writes_;
    throw cni::Error(cni::kErrTryAgainLater, "memory store: injected failure writing " + key);
  }
}

std::optional<int64_t> MemoryStore::put_if(const std::string& key, const std::string& value,
                                           int64_t expected) {
  before_write(key);
  std::lock_guard lock(mu_);
  ++counts_.writes;
  auto it = data_.find(key);
  int64_t current = it == data_.end() ? 0 : it->second.revision;
  if (current != expected) {
    ++counts_.conflicts;
    return std::nullopt;
  }
  data_[key] = KvEntry{key, value, ++revision_};
  return revision_;
}

bool MemoryStore::erase_if(const std::string& key, int64_t expected) {
  before_write(key);
  std::lock_guard lock(mu_);
  ++counts_.writes;
  auto it = data_.find(key);
  if (it == data_.end() || it->second.revision != expected) {
    ++counts_.conflicts;
    return false;
  }
  data_.erase(it);
  ++revision_;
  return true;
}

void MemoryStore::ping() {}

void MemoryStore::fail_writes(int n) {
  std::lock_guard lock(mu_);
  fail_writes_ = n;
}

MemoryStore::Counts MemoryStore::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace ipam
