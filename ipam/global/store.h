#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ipam {

// Wake-ups for callers that follow a store (the overlay route agents re-read the block table
// and node records and reconcile the kernel on each): not a stream of events, but "something
// under the watched prefixes may have changed since the previous wait() returned", with
// bursts coalesced. The contract:
//
//  - Nothing is lost: made before the caller's first full read, every write under the
//    prefixes after watch() returned makes a later wait() return kChanged or kResync.
//  - Prompt: a change wakes a waiting wait() within a second (file store: inotify, at once;
//    etcd: the watch stream, at once; memory: at once).
//  - Faults: when the store cannot be reached, wait() throws cni::Error{kErrTryAgainLater}
//    (etcd: no endpoint answered within the store's timeout) and the caller retries with a
//    backoff; the watch re-establishes itself on a later wait(), whose first answer is then
//    kResync: changes may have been missed, re-read everything. A watch that silently stops
//    (an etcd member frozen or cut off while its TCP connection stays up) is found out: with
//    no news for kProbeAfter, wait() asks the member for a linearizable read and fails over
//    when it does not answer within the store's timeout.
//  - Stoppable: wait(timeout) returns kTimeout after `timeout` without a change (callers
//    loop on it), and interrupt() makes the wait() in progress, or the next one, return
//    kInterrupted at once. interrupt() is async-signal-safe (a write to an eventfd): a
//    SIGTERM handler may call it.
//
// wait() is for one thread at a time; interrupt() for any thread or a signal handler. The
// file store's inotify sees writes made through this host's kernel only: nodes sharing the
// store over NFS must also re-read on kTimeout.
class KvWatch {
 public:
  enum class Event {
    kChanged,      // something under a prefix was written or deleted
    kResync,       // the watch was re-established (or events were dropped): re-read it all
    kTimeout,      // nothing within the timeout
    kInterrupted,  // interrupt() was called
  };
  static constexpr std::chrono::seconds kProbeAfter{5};

  virtual ~KvWatch() = default;
  virtual Event wait(std::chrono::milliseconds timeout) = 0;
  virtual void interrupt() = 0;
};

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
  // prefix of them is harmless. Returns the new revisions (0 for an erase), or nullopt when a
  // comparison failed (on an ordered store the writes before it have happened).
  struct Write {
    std::string key;
    std::string value;
    int64_t expected = 0;
    bool erase = false;  // delete the key (its `expected` revision must not be 0)
  };
  virtual std::optional<std::vector<int64_t>> put_all_if(const std::vector<Write>& writes);

  // put_all_if(writes), and when a comparison fails, read_batch(reads) in the same round trip
  // where the store can (etcd: the txn's failure branch, one snapshot): a write prepared from
  // a cached state costs one round trip when the cache was right, and the fresh state comes
  // back with the refusal when it was not.
  struct Outcome {
    std::optional<std::vector<int64_t>> revisions;  // the writes happened
    std::vector<std::vector<KvEntry>> reads;        // else what `reads` found
  };
  virtual Outcome put_all_if_or_read(const std::vector<Write>& writes,
                                     const std::vector<Read>& reads);

  // Whether put_all_if is atomic (all or nothing) and the batches are one round trip each:
  // then writes prepared from a cache are worth trying (etcd); a local store reads faster
  // than it could recover from a half-done ordered batch.
  virtual bool transactions() const { return false; }

  // Whether blocks are written in their compact form (Block::to_compact_json): etcd, where
  // every value crosses the JSON gateway in base64 and is kept in raft's log and bbolt; not
  // the file store, whose files people read. Either form is read from any store.
  virtual bool compact_values() const { return false; }

  // A watch on key prefixes (each ends with '/'): see KvWatch. Throws as a read does when
  // the store cannot be reached.
  virtual std::unique_ptr<KvWatch> watch(const std::vector<std::string>& prefixes) = 0;

  // Opens ahead what the next request needs (etcd: the connection to the current endpoint,
  // with its TLS handshake), so that an ADD or DEL opens it before it takes the node lock,
  // not inside it. Best effort, never throws: a failure is left for that request to meet,
  // and the time spent here counts against that request's timeout. Default: nothing.
  virtual void prepare() {}

  // Throws as above when the store cannot be reached or written (STATUS).
  virtual void ping() = 0;
  // Where the store lives, for messages ("file store /var/lib/cni/global-ipam").
  virtual std::string describe() const = 0;
};

}  // namespace ipam
