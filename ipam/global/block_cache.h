#pragma once

#include <map>
#include <string>
#include <vector>

#include "ipam/global/store.h"

namespace ipam {

// What the holder of a node's lock remembers between execs of the node's blocks and of the
// handle records it wrote (key, revision, value as last written or read), so that an ADD or
// a DEL on a store with transactions (etcd) is one round trip: a txn that writes what the
// cache predicts, compared with the cached revisions, whose failure branch reads the truth
// (KvStore::put_all_if_or_read). A hint only: every write still compares revisions, so a
// stale cache costs the round trip it failed to save, never an address.
//
// It lives beside the node lock's queue, <nodeLockDir>/<node>.queue/cache.<store id>, and only
// the lock's holder reads or writes it (no fsync), rewriting it in place. A missing,
// unreadable, malformed or torn file is an empty cache. Format: a header line
// "strait-block-cache 2 <body length> <hash of the body>\n", then per entry
// "B|H <revision> <key length> <value length>\n<key><value>\n" (B a block, H a handle).
class BlockCache {
 public:
  BlockCache() = default;  // in memory only (tests)
  explicit BlockCache(std::string path);
  // The file for the lock queue `queue_dir` and the store `store_id` (its describe()).
  static std::string path_for(const std::string& queue_dir, const std::string& store_id);

  const std::map<std::string, KvEntry>& blocks() const { return blocks_; }
  const KvEntry* handle(const std::string& key) const;
  // A block or handle record as written or read (blocks/ keys are blocks, the rest handles).
  void put(const KvEntry& e);
  void forget(const std::string& key);
  // Writes the file when something changed (best effort: a cache that cannot be written is
  // a cache that is not there next time).
  void save();

 private:
  static constexpr size_t kMaxHandles = 4096;  // a node's attachments, with room to spare

  std::string path_;
  std::map<std::string, KvEntry> blocks_;
  std::map<std::string, KvEntry> handles_;
  bool dirty_ = false;
};

}  // namespace ipam
