#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ipam {

// One stored key. `revision` changes with every write of the key and never repeats for it,
// even across a delete and a re-create (etcd's mod_revision; the file store keeps its own).
struct KvEntry {
  std::string key;
  std::string value;
  int64_t revision = 0;
};

// The cluster-wide IPAM's storage: a flat key/value space with compare-and-swap on one key at
// a time, and nothing else (no transactions over several keys, no global lock). Keys are
// '/'-separated paths relative to the store's root ("blocks/pool-a/10.0.0.32-27"); every
// component is non-empty and neither "." nor "..". This is the seam between the block
// allocator and the backends (in memory for tests, files, etcd).
//
// Faults: a store that cannot be reached (within its timeout) throws
// cni::Error{kErrTryAgainLater}; an OS fault of a local store throws std::system_error.
// Neither leaves a write half done: a write either happened or did not (for etcd, a write
// whose answer was lost may have happened; callers re-read and recognise their own write).
class KvStore {
 public:
  virtual ~KvStore() = default;

  virtual std::optional<KvEntry> get(const std::string& key) = 0;
  // Every key that starts with `prefix` (which ends with '/'), sorted by key. With keys_only,
  // values are left empty (cheaper for etcd).
  virtual std::vector<KvEntry> list(const std::string& prefix, bool keys_only = false) = 0;
  // Writes `value` if the key's revision still is `expected` (0: the key must not exist).
  // Returns the new revision, or nullopt when the comparison failed (nothing written).
  virtual std::optional<int64_t> put_if(const std::string& key, const std::string& value,
                                        int64_t expected) = 0;
  // Deletes the key if its revision still is `expected`; false when it is not (or the key is
  // absent).
  virtual bool erase_if(const std::string& key, int64_t expected) = 0;
  // Several reads in one round trip where the store can (etcd: one txn of ranges, which is
  // also one consistent snapshot); one after the other where it cannot. A prefix read
  // returns every key under the prefix (meant for small sets: no paging).
  struct Read {
    std::string key;
    bool prefix = false;  // `key` ends with '/': list it
    bool keys_only = false;
  };
  virtual std::vector<std::vector<KvEntry>> read_batch(const std::vector<Read>& reads);

  // Writes all of `writes` if every key's revision still is its `expected`. A store with
  // transactions (etcd) does it atomically, all or nothing; the others write in the given
  // order and stop at the first failed comparison, so callers order writes such that any
  // prefix of them is harmless. Returns the new revisions, or nullopt when a comparison
  // failed (on an ordered store the writes before it have happened).
  struct Write {
    std::string key;
    std::string value;
    int64_t expected = 0;
  };
  virtual std::optional<std::vector<int64_t>> put_all_if(const std::vector<Write>& writes);

  // Throws as above when the store cannot be reached or written (STATUS).
  virtual void ping() = 0;
  // Where the store lives, for messages ("file store /var/lib/cni/global-ipam").
  virtual std::string describe() const = 0;
};

}  // namespace ipam
