#include "test/support/memory_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "libcni/core/error.h"
#include "libcni/core/fd.h"

namespace ipam {

class MemoryWatch : public KvWatch {
 public:
  MemoryWatch(MemoryStore& store, std::vector<std::string> prefixes)
      : store_(store),
        prefixes_(std::move(prefixes)),
        changed_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        interrupt_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    std::lock_guard lock(store_.mu_);
    store_.watches_.push_back(this);
  }
  ~MemoryWatch() override {
    std::lock_guard lock(store_.mu_);
    auto& w = store_.watches_;
    w.erase(std::remove(w.begin(), w.end(), this), w.end());
  }
  // Under the store's mutex.
  void notify(const std::string& key) {
    for (const auto& p : prefixes_) {
      if (key.compare(0, p.size(), p) == 0) {
        uint64_t one = 1;
        ssize_t ignored = write(changed_.get(), &one, sizeof one);
        (void)ignored;
        return;
      }
    }
  }
  Event wait(std::chrono::milliseconds timeout) override {
    {
      std::lock_guard lock(store_.mu_);
      if (store_.unreachable_) {
        broken_ = true;
        throw cni::Error(cni::kErrTryAgainLater, "memory store: unreachable");
      }
    }
    if (broken_) {
      broken_ = false;
      return Event::kResync;
    }
    pollfd fds[2] = {{interrupt_.get(), POLLIN, 0}, {changed_.get(), POLLIN, 0}};
    poll(fds, 2, static_cast<int>(timeout.count()));
    uint64_t n = 0;
    if (read(interrupt_.get(), &n, sizeof n) == sizeof n) return Event::kInterrupted;
    if (read(changed_.get(), &n, sizeof n) == sizeof n) return Event::kChanged;
    return Event::kTimeout;
  }
  void interrupt() override {
    uint64_t one = 1;
    ssize_t ignored = write(interrupt_.get(), &one, sizeof one);
    (void)ignored;
  }

 private:
  MemoryStore& store_;
  std::vector<std::string> prefixes_;
  cni::UniqueFd changed_;
  cni::UniqueFd interrupt_;
  bool broken_ = false;
};

std::unique_ptr<KvWatch> MemoryStore::watch(const std::vector<std::string>& prefixes) {
  return std::make_unique<MemoryWatch>(*this, prefixes);
}

void MemoryStore::set_unreachable(bool unreachable) {
  std::lock_guard lock(mu_);
  unreachable_ = unreachable;
}

void MemoryStore::notify(const std::string& key) {
  for (auto* w : watches_) w->notify(key);
}

std::optional<KvEntry> MemoryStore::get(const std::string& key) {
  std::lock_guard lock(mu_);
  ++counts_.gets;
  ++counts_.round_trips;
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::vector<KvEntry> MemoryStore::list(const std::string& prefix, bool keys_only) {
  std::lock_guard lock(mu_);
  ++counts_.lists;
  ++counts_.round_trips;
  return list_locked(prefix, keys_only);
}

std::vector<KvEntry> MemoryStore::list_locked(const std::string& prefix, bool keys_only) const {
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
  ++counts_.round_trips;
  auto it = data_.find(key);
  int64_t current = it == data_.end() ? 0 : it->second.revision;
  if (current != expected) {
    ++counts_.conflicts;
    return std::nullopt;
  }
  data_[key] = KvEntry{key, value, ++revision_};
  notify(key);
  return revision_;
}

bool MemoryStore::erase_if(const std::string& key, int64_t expected) {
  before_write(key);
  std::lock_guard lock(mu_);
  ++counts_.writes;
  ++counts_.round_trips;
  auto it = data_.find(key);
  if (it == data_.end() || it->second.revision != expected) {
    ++counts_.conflicts;
    return false;
  }
  data_.erase(it);
  ++revision_;
  notify(key);
  return true;
}

void MemoryStore::ping() {}

void MemoryStore::set_transactions(bool on) {
  std::lock_guard lock(mu_);
  transactions_ = on;
}

bool MemoryStore::transactions() const {
  std::lock_guard lock(mu_);
  return transactions_;
}

std::vector<std::vector<KvEntry>> MemoryStore::read_batch(const std::vector<Read>& reads) {
  if (!transactions()) return KvStore::read_batch(reads);
  std::lock_guard lock(mu_);
  ++counts_.round_trips;
  std::vector<std::vector<KvEntry>> out;
  for (const auto& r : reads) {
    if (r.prefix) {
      out.push_back(list_locked(r.key, r.keys_only));
    } else if (auto it = data_.find(r.key); it != data_.end()) {
      out.push_back({it->second});
    } else {
      out.emplace_back();
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> MemoryStore::apply_locked(const std::vector<Write>& writes) {
  counts_.writes += static_cast<int>(writes.size());
  for (const auto& w : writes) {
    auto it = data_.find(w.key);
    int64_t current = it == data_.end() ? 0 : it->second.revision;
    if (current != w.expected || (w.erase && w.expected == 0)) {
      ++counts_.conflicts;
      return std::nullopt;
    }
  }
  ++revision_;  // one revision for the whole batch, as an etcd txn
  std::vector<int64_t> revs;
  for (const auto& w : writes) {
    if (w.erase) {
      data_.erase(w.key);
      revs.push_back(0);
    } else {
      data_[w.key] = KvEntry{w.key, w.value, revision_};
      revs.push_back(revision_);
    }
    notify(w.key);
  }
  return revs;
}

std::optional<std::vector<int64_t>> MemoryStore::put_all_if(const std::vector<Write>& writes) {
  if (!transactions()) return KvStore::put_all_if(writes);
  for (const auto& w : writes) before_write(w.key);
  std::lock_guard lock(mu_);
  ++counts_.round_trips;
  return apply_locked(writes);
}

KvStore::Outcome MemoryStore::put_all_if_or_read(const std::vector<Write>& writes,
                                                 const std::vector<Read>& reads) {
  if (!transactions()) return KvStore::put_all_if_or_read(writes, reads);
  for (const auto& w : writes) before_write(w.key);
  Outcome o;
  {
    std::lock_guard lock(mu_);
    ++counts_.round_trips;
    o.revisions = apply_locked(writes);
    if (o.revisions) return o;
    --counts_.round_trips;  // the reads below are the same round trip
  }
  o.reads = read_batch(reads);
  return o;
}

void MemoryStore::fail_writes(int n) {
  std::lock_guard lock(mu_);
  fail_writes_ = n;
}

MemoryStore::Counts MemoryStore::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace ipam
