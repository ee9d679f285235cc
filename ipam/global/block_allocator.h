#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ipam/address_request.h"
#include "ipam/global/block.h"
#include "ipam/global/block_cache.h"
#include "ipam/global/config.h"
#include "ipam/global/records.h"
#include "ipam/global/store.h"
#include "libcni/core/ip.h"

namespace ipam {

// One address held by a handle.
struct Assignment {
  std::string pool;
  cni::IpNet block;
  cni::IpAddress ip;
  uint64_t seq = 0;
  std::string block_affinity;  // the node that owns the block
  bool borrowed = false;       // taken by a node other than the block's owner
  bool reused = false;         // held before the call that returned it
  bool operator==(const Assignment&) const = default;
};

struct AllocatorOptions {
  std::string node;
  bool strict_affinity = false;
  uint32_t max_blocks_per_node = 0;  // per pool; 0: no cap
  // Compare-and-swap attempts per address before giving up with kErrTryAgainLater
  // (Calico's datastoreRetries).
  int max_attempts = 100;
  // Pools with at most this many blocks are searched for a free block by listing the
  // pool's block keys; larger ones by probing single keys first.
  uint32_t list_threshold = 1024;
  int probes = 16;
  // Sleeps between attempts (tests pass a no-op or a counter).
  std::function<void(std::chrono::microseconds)> sleep;
  // The node's cache (held under the node lock; block_cache.h): with a store that has
  // transactions, an ADD or DEL it predicts is one round trip. Null: none.
  BlockCache* cache = nullptr;
  // An empty block stays its node's for this long (seconds), then the next node that finds
  // no free block releases and claims it; 0: never (emptyBlockGraceSeconds).
  int64_t empty_block_grace_s = 600;
  // The wall clock in unix seconds (tests pass their own); default time().
  std::function<int64_t()> now;
  // The pools assign() takes new addresses from, in the order tried per family (the pod's
  // choice, pool_selection.h; checked there against the node); a family none of them is of
  // gets no new address. nullopt: every pool that selects the node, in config order.
  std::optional<std::vector<std::string>> pools;
};

// The cluster-wide allocator (Calico's IPAM core over our KvStore): pools cut into blocks,
// blocks claimed by nodes, every write a compare-and-swap of one key retried on conflict. An
// instance serves one operation of one node; it keeps no state between calls that the store
// does not have, so any number of processes on any number of nodes share a store.
//
// Writes per new address: the handle record (an intent naming the block, address and
// sequence number) and then the block; a claim adds the node's affinity index entry before
// the block is created. Whatever crashes between these writes leaves entries that readers
// recognise as stale (the block is the truth), never an allocation that its handle's DEL
// or this node's GC cannot find.
class BlockAllocator {
 public:
  BlockAllocator(const std::vector<PoolConfig>& pools, KvStore& store, AllocatorOptions options);

  // The addresses of `handle`: what it already holds (reused, as a retried ADD must get the
  // same answer), else one per address family among the pools that select this node, or
  // the requested addresses (at most one per family, each inside some pool, usable and
  // free). Order: requested families first, then families in the pools' order. Search
  // order for a new address: this node's blocks in the pools' order; a free block claimed
  // (a node-specific probe order, under maxBlocksPerNode); an address borrowed from
  // another node's block (not with strictAffinity). Nothing left: cni::Error{kErrNoAddress}
  // "pool X exhausted". A failure releases what this call took and nothing else. The
  // requests are checked against the config first (pools_of_requests), before anything held
  // is looked at: a retried ADD asking for an address the config has since made unusable
  // (a new gateway) fails with kErrAddressUnavailable rather than reusing it.
  std::vector<Assignment> assign(const records::Handle& handle,
                                 const std::vector<AddressRequest>& requested);
  // What `handle` holds now (CHECK).
  std::vector<Assignment> held(const records::Handle& handle);
  // Releases everything `handle` holds and its record; an unknown handle releases nothing.
  std::vector<Assignment> release(const records::Handle& handle);
  // What a garbage collection looks at. The CNI GC of a node: its network, its node, its
  // own blocks; the operator's `global-ipam gc`: any of them, every block.
  struct GcScope {
    std::string network;  // "" every network
    std::string node;     // handles and allocations made on this node; "" every node
    // Where allocations without a handle record are looked for: every block of the store
    // (which also finds what `node` borrowed from other nodes' blocks), or only `node`'s own
    // blocks (one index read and one batch: what the CNI GC of a node can afford).
    bool every_block = false;
  };
  struct Collected {
    Assignment address;
    std::string handle;
    std::string node;  // where the attachment was made
  };
  struct GcReport {
    std::vector<Collected> released;  // with dry_run: what would be released
    // One line per handle or block that could not be collected (a store fault, a malformed
    // record). The others are collected all the same: one stuck handle must not pin every
    // other stale one (SPEC GC).
    std::vector<std::string> errors;
  };
  // GC (the one collector: the CNI verb and the operator's command both run it): releases
  // the handles in `scope` that `valid` rejects, and every allocation in scope whose handle
  // `valid` rejects and that no handle record names (the record was removed by hand, or lost
  // with a store restored from a backup). Releases compare sequence numbers, so an address
  // given out again since it was seen is kept. With dry_run nothing is written.
  GcReport collect(const GcScope& scope, const std::function<bool(const records::Handle&)>& valid,
                   bool dry_run = false);

  // Frees `ip` of pool `pool` only if `handle` still holds it with sequence number `seq`
  // (nullopt: any): a stale release (an old report, a late DEL) never frees an address
  // given out again since.
  Block::ReleaseOutcome release_address(const std::string& pool, const cni::IpNet& block,
                                        const cni::IpAddress& ip, const std::string& handle,
                                        std::optional<uint64_t> seq);

  // STATUS: throws cni::Error{kErrNoAddress} naming the pools of a family when this node
  // could not get one more address of that family.
  void check_available();

  // This node's record: created (name only) if absent.
  void ensure_node();

 private:
  struct Loaded {
    Block block;
    int64_t revision = 0;
  };
  struct HandleState {
    std::optional<records::HandleRecord> record;
    int64_t revision = 0;
  };
  class Conflict {};  // a compare-and-swap lost: re-read and retry

  const PoolConfig* pool_named(const std::string& name) const;
  // The pools new addresses come from (AllocatorOptions::pools), and those of one family.
  std::vector<const PoolConfig*> candidates() const;
  std::vector<const PoolConfig*> pools_of(int family) const;
  std::string key_of(const PoolConfig& pool, const cni::IpNet& block) const;

  // A block as this store keeps it (compact on etcd, KvStore::compact_values).
  std::string encode(const Block& b) const;
  Loaded decode_block(const KvEntry& e) const;
  HandleState decode_handle(const KvEntry& e) const;
  std::optional<Loaded> load_block(const std::string& key);
  HandleState load_handle(const records::Handle& handle);
  // The handle's entries that its blocks confirm.
  std::vector<Assignment> verify(const records::Handle& handle, const HandleState& state);
  // The cache (when there is one) learns what was written or read.
  void remember(const std::string& key, const std::string& value, int64_t revision);
  void forget(const std::string& key);
  // Stamps emptySince on a block that just lost its last allocation.
  void note_empty(Block& b) const;
  // ADD in one round trip from the cache: nullopt when the cache cannot say (then `fresh`
  // stays empty) or was wrong (then `fresh` holds `reads` as the failed txn read them,
  // except the blocks it marks in `unread`: not read, not known to be absent).
  std::optional<std::vector<Assignment>> assign_from_cache(const records::Handle& handle,
                                                           const std::vector<int>& families,
                                                           const std::vector<KvStore::Read>& reads,
                                                           std::vector<std::vector<KvEntry>>* fresh,
                                                           std::vector<bool>* unread);
  // DEL in one round trip from the cache, likewise; `reads` are the handle and its blocks.
  std::optional<std::vector<Assignment>> release_from_cache(
      const records::Handle& handle, std::vector<KvStore::Read>* reads,
      std::vector<std::vector<KvEntry>>* fresh);
  // An empty block of `pool` whose grace period has passed, released (deleted with a
  // compare-and-swap on the revision it was seen empty at) for this node to claim.
  std::optional<cni::IpNet> reclaim_empty_block(const PoolConfig& pool);
  // Whether one is there (STATUS), without writing.
  bool has_reclaimable_block(const PoolConfig& pool);
  // Writes the handle record with `entry` appended (the intent) and `block`, both compared
  // with their revisions: one etcd txn, or intent then block on the file store. Throws
  // Conflict when either changed.
  // `also` are written with them (a claim's index entry and node record on etcd), after them
  // on a store without transactions.
  void write_with_intent(const records::Handle& handle, HandleState& state,
                         const records::HandleEntry& entry, const std::string& block_key,
                         const Block& block, int64_t block_revision,
                         const std::vector<KvStore::Write>& also = {});
  void check_pool_record(const PoolConfig& pool);
  // A pool or node record as the first batch of assign() read it (once), else from the store.
  std::optional<KvEntry> get_record(const std::string& key);
  // The write that creates this node's record (a claim's, on a store with transactions), or
  // none when it exists.
  std::optional<KvStore::Write> node_record_write();

  // The blocks this node owns in `pool` (stale index entries dropped), sorted.
  std::vector<std::pair<std::string, std::optional<Loaded>>> affine_blocks(const PoolConfig& pool);
  // One attempt to take a free address of `loaded` for `handle`: throws Conflict.
  Assignment take(const records::Handle& handle, HandleState& state, const PoolConfig& pool,
                  const std::string& key, Loaded loaded, std::optional<uint32_t> ordinal);
  // Creates block `cidr` of `pool` for this node with the handle's first address in it.
  std::optional<Assignment> claim(const records::Handle& handle, HandleState& state,
                                  const PoolConfig& pool, const cni::IpNet& cidr,
                                  std::optional<uint32_t> ordinal);
  // A block of `pool` nobody has created yet, in this node's probe order.
  std::optional<cni::IpNet> find_free_block(const PoolConfig& pool);
  bool at_cap(const PoolConfig& pool, size_t owned) const;

  Assignment assign_auto(const records::Handle& handle, HandleState& state, int family);
  Assignment assign_requested(const records::Handle& handle, HandleState& state,
                              const AddressRequest& req, const PoolConfig& pool);
  void backoff(int attempt);

  const std::vector<PoolConfig>& pools_;
  KvStore& store_;
  AllocatorOptions options_;
  std::map<std::string, bool> pool_checked_;
  // Affinity listings read together with the handle at the start of assign().
  std::map<std::string, std::vector<KvEntry>> prefetched_;
  // Blocks read in the same batch (the cache's keys): key -> entry, nullopt when absent. Used
  // once (by load_block or affine_blocks), then dropped: our own writes make them stale.
  std::map<std::string, std::optional<KvEntry>> prefetched_blocks_;
  // The pool and node records read in that batch (a claim needs them), likewise once.
  std::map<std::string, std::optional<KvEntry>> prefetched_records_;
  // Block key -> the revision of this node's index entry for it, as affine_blocks() last
  // listed it (a claim completing an interrupted one compares it).
  std::map<std::string, int64_t> index_revisions_;
  // Seeded on first use: only a lost race draws from it, and std::random_device asks the CPU
  // (cpuid) whether it has RDRAND, which in a VM traps to the hypervisor on every exec.
  std::minstd_rand& rng();
  std::optional<std::minstd_rand> rng_;
};

}  // namespace ipam
