#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ipam/global/store.h"

namespace ipam {

// A KvStore in memory: the unit tests' backend. Thread-safe, so tests run several allocators
// against one instance in parallel; revisions are global and increasing, as in etcd.
// fail_writes() makes the next N writes throw cni::Error{kErrTryAgainLater} before they
// happen (a store going away mid-operation); on_write is called before every write (tests
// interleave a competing writer there).
class MemoryStore : public KvStore {
 public:
  std::optional<KvEntry> get(const std::string& key) override;
  std::vector<KvEntry> list(const std::string& prefix, bool keys_only = false) override;
  std::optional<int64_t> put_if(const std::string& key, const std::string& value,
                                int64_t expected) override;
  bool erase_if(const std::string& key, int64_t expected) override;
  void ping() override;
  std::string describe() const override { return "memory store"; }
  // Wakes on every write under the prefixes, at once (eventfds); see set_unreachable.
  std::unique_ptr<KvWatch> watch(const std::vector<std::string>& prefixes) override;

  // Batches as etcd has them: read_batch, put_all_if (all or nothing) and put_all_if_or_read
  // each one round trip; transactions() says true. Off: the ordered defaults of KvStore.
  void set_transactions(bool on);
  std::vector<std::vector<KvEntry>> read_batch(const std::vector<Read>& reads) override;
  std::optional<std::vector<int64_t>> put_all_if(const std::vector<Write>& writes) override;
  Outcome put_all_if_or_read(const std::vector<Write>& writes,
                             const std::vector<Read>& reads) override;
  bool transactions() const override;
  // With transactions, blocks are also written compact, as on etcd.
  bool compact_values() const override { return transactions(); }

  void fail_writes(int n);
  // While unreachable, watches' wait() throws cni::Error{kErrTryAgainLater} (a store gone
  // away); once reachable again, each watch that threw answers kResync first.
  void set_unreachable(bool unreachable);
  // Counts of operations so far (tests check how many round trips a verb costs).
  struct Counts {
    int gets = 0;
    int lists = 0;
    int writes = 0;
    int conflicts = 0;
    int round_trips = 0;  // calls of the KvStore interface (a batch is one)
  };
  Counts counts() const;
  // Called (without the store's mutex held) before each write with the key written.
  std::function<void(const std::string& key)> on_write;

 private:
  friend class MemoryWatch;
  void before_write(const std::string& key);
  void notify(const std::string& key);
  mutable std::mutex mu_;
  std::vector<class MemoryWatch*> watches_;
  bool unreachable_ = false;
  bool transactions_ = false;
  // Under mu_: the batch's comparisons, then (all holding) its writes.
  std::optional<std::vector<int64_t>> apply_locked(const std::vector<Write>& writes);
  std::vector<KvEntry> list_locked(const std::string& prefix, bool keys_only) const;
  std::map<std::string, KvEntry> data_;
  int64_t revision_ = 0;
  int fail_writes_ = 0;
  Counts counts_;
};

}  // namespace ipam
