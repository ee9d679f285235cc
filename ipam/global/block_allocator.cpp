#include "ipam/global/block_allocator.h"

#include <netinet/in.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <stdexcept>
#include <thread>

#include "ipam/errors.h"
#include "libcni/core/error.h"

namespace ipam {

using cni::IpAddress;
using cni::IpNet;
using records::Handle;
using records::HandleEntry;
using records::HandleRecord;

namespace {

std::string join_names(const std::vector<const PoolConfig*>& pools) {
  std::string s;
  for (const auto* p : pools) s += (s.empty() ? "" : ", ") + p->name;
  return s;
}

std::string family_name(int family) { return family == AF_INET ? "IPv4" : "IPv6"; }

// "pool a exhausted" / "pools a, b exhausted": the message names what ran out.
cni::Error exhausted(const std::vector<const PoolConfig*>& pools, const std::string& why) {
  std::string msg = (pools.size() == 1 ? "pool " : "pools ") + join_names(pools) + " exhausted";
  return cni::Error(kErrNoAddress, msg, why);
}

}  // namespace

BlockAllocator::BlockAllocator(const std::vector<PoolConfig>& pools, KvStore& store,
                               AllocatorOptions options)
    : pools_(pools), store_(store), options_(std::move(options)) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::microseconds d) { std::this_thread::sleep_for(d); };
  }
  if (!options_.now) options_.now = [] { return static_cast<int64_t>(std::time(nullptr)); };
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

// ---- lookups ----------------------------------------------------------------------------

const PoolConfig* BlockAllocator::pool_named(const std::string& name) const {
  for (const auto& p : pools_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<const PoolConfig*> BlockAllocator::candidates() const {
  std::vector<const PoolConfig*> out;
  if (options_.pools) {
    for (const auto& name : *options_.pools) {
      if (const PoolConfig* p = pool_named(name)) out.push_back(p);
    }
    return out;
  }
  for (const auto& p : pools_) {
    if (p.selects(options_.node)) out.push_back(&p);
  }
  return out;
}

std::vector<const PoolConfig*> BlockAllocator::pools_of(int family) const {
  std::vector<const PoolConfig*> out;
  for (const PoolConfig* p : candidates()) {
    if (p->family() == family) out.push_back(p);
  }
  return out;
}

std::string BlockAllocator::key_of(const PoolConfig& pool, const IpNet& block) const {
  return records::block_key(pool.name, block);
}

BlockAllocator::Loaded BlockAllocator::decode_block(const KvEntry& e) const {
  try {
    return Loaded{Block::decode(e.value), e.revision};
  } catch (const std::exception& ex) {
    throw std::runtime_error(store_.describe() + ": " + e.key + ": " + ex.what());
  }
}

std::optional<BlockAllocator::Loaded> BlockAllocator::load_block(const std::string& key) {
  std::optional<KvEntry> e;
  if (auto it = prefetched_blocks_.find(key); it != prefetched_blocks_.end()) {
    e = std::move(it->second);
    prefetched_blocks_.erase(it);
  } else {
    e = store_.get(key);
  }
  if (!e) return std::nullopt;
  return decode_block(*e);
}

BlockAllocator::HandleState BlockAllocator::decode_handle(const KvEntry& e) const {
  try {
    return {HandleRecord::from_json(nlohmann::json::parse(e.value)), e.revision};
  } catch (const std::exception& ex) {
    throw std::runtime_error(store_.describe() + ": " + e.key + ": " + ex.what());
  }
}

BlockAllocator::HandleState BlockAllocator::load_handle(const Handle& handle) {
  auto e = store_.get(handle.key());
  if (!e) return {};
  return decode_handle(*e);
}

std::vector<Assignment> BlockAllocator::verify(const Handle& handle, const HandleState& state) {
  std::vector<Assignment> out;
  if (!state.record) return out;
  std::map<std::string, std::optional<Loaded>> cache;
  for (const auto& e : state.record->entries) {
    std::string key = records::block_key(e.pool, e.block);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, load_block(key)).first;
    if (!it->second || !it->second->block.cidr.contains(e.ip)) continue;
    const Block& b = it->second->block;
    auto a = b.allocations.find(b.ordinal(e.ip));
    if (a == b.allocations.end() || a->second.handle != handle.id() || a->second.seq != e.seq) {
      continue;  // a stale intent: the block never took it, or took it back
    }
    bool dup = std::any_of(out.begin(), out.end(), [&](const auto& x) { return x.ip == e.ip; });
    if (dup) continue;
    out.push_back(Assignment{e.pool, b.cidr, e.ip, e.seq, b.affinity, b.borrowed(a->second), true});
  }
  return out;
}

std::string BlockAllocator::encode(const Block& b) const {
  return b.encode(store_.compact_values());
}

// ---- the node's cache -------------------------------------------------------------------

void BlockAllocator::remember(const std::string& key, const std::string& value, int64_t rev) {
  if (options_.cache) options_.cache->put(KvEntry{key, value, rev});
}

void BlockAllocator::forget(const std::string& key) {
  if (options_.cache) options_.cache->forget(key);
}

void BlockAllocator::note_empty(Block& b) const {
  if (b.allocations.empty() && !b.empty_since) b.empty_since = options_.now();
}

// ---- writes -----------------------------------------------------------------------------

std::minstd_rand& BlockAllocator::rng() {
  if (!rng_) rng_.emplace(std::random_device{}());
  return *rng_;
}

void BlockAllocator::backoff(int attempt) {
  // Jittered exponential backoff: up to 0.5 ms * 2^attempt, at most 20 ms.
  int64_t cap = std::min<int64_t>(int64_t{500} << std::min(attempt, 6), 20000);
  std::uniform_int_distribution<int64_t> d(cap / 4, cap);
  options_.sleep(std::chrono::microseconds(d(rng())));
}

void BlockAllocator::write_with_intent(const Handle& handle, HandleState& state,
                                       const HandleEntry& entry, const std::string& block_key,
                                       const Block& block, int64_t block_revision,
                                       const std::vector<KvStore::Write>& also) {
  HandleRecord rec = state.record.value_or(HandleRecord{});
  rec.node = options_.node;
  rec.entries.push_back(entry);
  // The intent first: on a store without transactions a crash between the two writes leaves
  // an intent the block does not confirm (harmless), never an allocation nobody can find.
  std::string rec_json = rec.to_json().dump();
  std::string block_json = encode(block);
  std::vector<KvStore::Write> writes = {{handle.key(), rec_json, state.revision},
                                        {block_key, block_json, block_revision}};
  writes.insert(writes.end(), also.begin(), also.end());
  auto revs = store_.put_all_if(writes);
  if (!revs) throw Conflict{};
  state.record = std::move(rec);
  state.revision = revs->front();
  remember(handle.key(), rec_json, (*revs)[0]);
  if (block.affinity == options_.node) remember(block_key, block_json, (*revs)[1]);
}

std::optional<KvEntry> BlockAllocator::get_record(const std::string& key) {
  if (auto it = prefetched_records_.find(key); it != prefetched_records_.end()) {
    auto e = std::move(it->second);
    prefetched_records_.erase(it);
    return e;
  }
  return store_.get(key);
}

std::optional<KvStore::Write> BlockAllocator::node_record_write() {
  std::string key = records::node_key(options_.node);
  if (get_record(key)) return std::nullopt;
  records::NodeRecord rec;
  rec.name = options_.node;
  return KvStore::Write{key, rec.to_json().dump(), 0};
}

void BlockAllocator::check_pool_record(const PoolConfig& pool) {
  if (pool_checked_[pool.name]) return;
  records::PoolRecord want{pool.cidr(), pool.layout.block_size()};
  std::string key = records::pool_key(pool.name);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    auto e = get_record(key);
    std::optional<int64_t> written;
    if (!e) {
      // A pool new to the store must not overlap one another config put there.
      for (const auto& other : store_.list(records::pools_prefix())) {
        auto name = records::parse_pool_key(other.key);
        if (!name) continue;  // not a pool record (`global-ipam check` reports it)
        auto rec = records::PoolRecord::from_json(nlohmann::json::parse(other.value));
        if (*name != pool.name && rec.cidr.overlaps(pool.cidr())) {
          throw cni::Error(cni::kErrInvalidConfig, "invalid config: pool " + pool.name + " (" +
                                                       pool.cidr().str() + ") overlaps pool " +
                                                       *name + " (" + rec.cidr.str() + ") in " +
                                                       store_.describe());
        }
      }
      written = store_.put_if(key, want.to_json().dump(), 0);
    } else {
      records::PoolRecord have;
      try {
        have = records::PoolRecord::from_json(nlohmann::json::parse(e->value));
      } catch (const std::exception& ex) {
        throw std::runtime_error(store_.describe() + ": " + key + ": " + ex.what());
      }
      if (have.cidr == want.cidr && have.block_size == want.block_size) break;
      if (!store_.list(records::blocks_prefix(pool.name), true).empty()) {
        throw cni::Error(cni::kErrInvalidConfig,
                         "invalid config: pool " + pool.name + ": cidr " + want.cidr.str() +
                             " blockSize " + std::to_string(want.block_size) +
                             " differs from cidr " + have.cidr.str() + " blockSize " +
                             std::to_string(have.block_size) + " in " + store_.describe() +
                             "; a pool's cidr and blockSize cannot change once it has blocks");
      }
      written = store_.put_if(key, want.to_json().dump(), e->revision);  // no blocks yet
    }
    if (written) break;
  }
  pool_checked_[pool.name] = true;
}

void BlockAllocator::ensure_node() {
  if (auto w = node_record_write()) {
    store_.put_if(w->key, w->value, 0);  // lost to a concurrent create: fine
  }
}

std::vector<std::pair<std::string, std::optional<BlockAllocator::Loaded>>>
BlockAllocator::affine_blocks(const PoolConfig& pool) {
  std::string prefix = records::affinity_prefix(options_.node, pool.name);
  std::vector<KvEntry> index;
  if (auto it = prefetched_.find(prefix); it != prefetched_.end()) {
    index = std::move(it->second);  // read with the handle by assign(); once only
    prefetched_.erase(it);
  } else {
    index = store_.list(prefix, true);
  }
  std::vector<KvEntry> entries;
  std::vector<KvStore::Read> reads;
  for (auto& e : index) {
    auto k = records::parse_affinity_key(e.key);
    if (!k || k->node != options_.node || k->pool != pool.name || !pool.layout.is_block(k->cidr)) {
      continue;
    }
    reads.push_back({key_of(pool, k->cidr)});
    entries.push_back(std::move(e));
  }
  // Every block of the node in one round trip, unless the first batch of assign() read them
  // already (the cache named them).
  std::vector<std::vector<KvEntry>> blocks(reads.size());
  std::vector<KvStore::Read> missing;
  std::vector<size_t> missing_at;
  for (size_t i = 0; i < reads.size(); ++i) {
    if (auto it = prefetched_blocks_.find(reads[i].key); it != prefetched_blocks_.end()) {
      if (it->second) blocks[i].push_back(std::move(*it->second));
      prefetched_blocks_.erase(it);
    } else {
      missing.push_back(reads[i]);
      missing_at.push_back(i);
    }
  }
  if (!missing.empty()) {
    auto got = store_.read_batch(missing);
    for (size_t j = 0; j < got.size(); ++j) blocks[missing_at[j]] = std::move(got[j]);
  }
  std::vector<std::pair<std::string, std::optional<Loaded>>> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    index_revisions_[reads[i].key] = entries[i].revision;
    std::optional<Loaded> loaded;
    if (!blocks[i].empty()) loaded = decode_block(blocks[i].front());
    if (loaded && loaded->block.affinity != options_.node) {
      // The claim that wrote this entry lost the block to another node: drop the entry.
      store_.erase_if(entries[i].key, entries[i].revision);
      forget(reads[i].key);
      continue;
    }
    if (loaded) {
      remember(reads[i].key, blocks[i].front().value, loaded->revision);
    } else {
      forget(reads[i].key);
    }
    // No block: a claim that crashed between the index entry and the block; the caller
    // completes it.
    out.emplace_back(reads[i].key, std::move(loaded));
  }
  if (options_.cache) {
    // What the cache holds of this pool beyond the index (released, reclaimed) goes.
    std::string pool_prefix = records::blocks_prefix(pool.name);
    std::vector<std::string> gone;
    for (const auto& [key, e] : options_.cache->blocks()) {
      // A copy: clang before 16 cannot capture a structured binding.
      bool listed =
          std::any_of(out.begin(), out.end(), [k = key](const auto& b) { return b.first == k; });
      if (key.compare(0, pool_prefix.size(), pool_prefix) == 0 && !listed) gone.push_back(key);
    }
    for (const auto& key : gone) forget(key);
  }
  return out;
}

Assignment BlockAllocator::take(const Handle& handle, HandleState& state, const PoolConfig& pool,
                                const std::string& key, Loaded loaded,
                                std::optional<uint32_t> ordinal) {
  Block& b = loaded.block;
  uint32_t ord =
      ordinal ? *ordinal : *b.find_free([&](const IpAddress& ip) { return pool.usable(ip); });
  IpAddress ip = b.address(ord);
  uint64_t seq = b.assign(ord, handle.id(), options_.node);
  write_with_intent(handle, state, HandleEntry{pool.name, b.cidr, ip, seq}, key, b,
                    loaded.revision);
  return Assignment{pool.name, b.cidr, ip, seq, b.affinity, b.affinity != options_.node, false};
}

std::optional<Assignment> BlockAllocator::claim(const Handle& handle, HandleState& state,
                                                const PoolConfig& pool, const IpNet& cidr,
                                                std::optional<uint32_t> ordinal) {
  check_pool_record(pool);
  Block b;
  b.cidr = cidr;
  b.pool = pool.name;
  b.affinity = options_.node;
  auto usable = [&](const IpAddress& ip) { return pool.usable(ip); };
  auto ord = ordinal ? ordinal : b.find_free(usable);
  if (!ord) return std::nullopt;  // a block of unusable addresses only (a /32 at the gateway)
  std::string index = records::affinity_key(options_.node, pool.name, cidr);
  std::string key = key_of(pool, cidr);
  IpAddress ip = b.address(*ord);
  uint64_t seq = b.assign(*ord, handle.id(), options_.node);
  HandleEntry entry{pool.name, cidr, ip, seq};
  if (store_.transactions()) {
    // One txn: the handle, the block, its index entry (created, or the entry an interrupted
    // claim left, as listed) and the node's record when it has none. A competing claim or a
    // stale listing fails a comparison: Conflict, re-read.
    std::vector<KvStore::Write> also = {{index, "{}", 0}};
    if (auto it = index_revisions_.find(key); it != index_revisions_.end()) {
      also[0].expected = it->second;
    }
    if (auto w = node_record_write()) also.push_back(std::move(*w));
    write_with_intent(handle, state, entry, key, b, 0, also);
  } else {
    ensure_node();
    // The index entry first: a crash after it leaves an entry without a block, which this
    // node's next allocation completes; the other order could leave a block nobody lists.
    store_.put_if(index, "{}", 0);
    write_with_intent(handle, state, entry, key, b, 0);
  }
  return Assignment{pool.name, cidr, ip, seq, options_.node, false, false};
}

namespace {

// Whether any address of `block` may be handed out (only tiny blocks can be all excluded).
bool has_usable(const PoolConfig& pool, const IpNet& block) {
  uint32_t n = 1u << (block.ip.bits() - block.prefix);
  if (n > 3) return true;
  for (uint32_t i = 0; i < n; ++i) {
    if (pool.usable(block.ip + static_cast<int64_t>(i))) return true;
  }
  return false;
}

}  // namespace

std::optional<IpNet> BlockAllocator::find_free_block(const PoolConfig& pool) {
  const BlockLayout& layout = pool.layout;
  cni::Uint128 n = layout.count();
  uint64_t hash = node_pool_hash(options_.node, pool.name);
  auto free_in = [&](const std::set<std::string>& existing,
                     cni::Uint128 steps) -> std::optional<IpNet> {
    for (cni::Uint128 k = 0; k < steps; ++k) {
      IpNet cidr = layout.block(layout.probe(hash, k));
      if (!existing.count(key_of(pool, cidr)) && has_usable(pool, cidr)) return cidr;
    }
    return std::nullopt;
  };
  auto existing_keys = [&] {
    std::set<std::string> keys;
    for (auto& e : store_.list(records::blocks_prefix(pool.name), true)) keys.insert(e.key);
    return keys;
  };
  if (n <= options_.list_threshold) return free_in(existing_keys(), n);
  // A large pool: a few single-key probes find a free block unless the pool is nearly full.
  // The node's own blocks (its index, as affine_blocks() just listed it) hold the first
  // steps of its probe order: they are passed over without a read, else the m-th claim of a
  // node would read its m-1 blocks again.
  int probed = 0;
  for (cni::Uint128 k = 0; k < n && probed < options_.probes; ++k) {
    IpNet cidr = layout.block(layout.probe(hash, k));
    std::string key = key_of(pool, cidr);
    if (!has_usable(pool, cidr) || index_revisions_.count(key)) continue;
    ++probed;
    if (!store_.get(key)) return cidr;
  }
  // Nearly full: the probe order is a permutation, so a free block (if any) comes within
  // (existing blocks + the few all-unusable ones + 1) steps.
  auto keys = existing_keys();
  cni::Uint128 bound = std::min<cni::Uint128>(n, keys.size() + 4);
  return free_in(keys, bound);
}

std::optional<IpNet> BlockAllocator::reclaim_empty_block(const PoolConfig& pool) {
  if (options_.empty_block_grace_s <= 0) return std::nullopt;
  int64_t now = options_.now();
  for (const auto& e : store_.list(records::blocks_prefix(pool.name))) {
    if (!records::parse_block_key(e.key)) continue;
    Loaded l = decode_block(e);
    Block& b = l.block;
    if (!b.allocations.empty() || !pool.layout.is_block(b.cidr) || !has_usable(pool, b.cidr)) {
      continue;
    }
    if (!b.empty_since) {
      // Emptied before blocks were stamped (or by an older version): its grace starts now.
      b.empty_since = now;
      store_.put_if(e.key, encode(b), e.revision);
      continue;
    }
    if (now - *b.empty_since < options_.empty_block_grace_s) continue;
    // Never while an ADD is using it: an address taken since it was read changed the
    // revision, and the delete compares it.
    if (!store_.erase_if(e.key, e.revision)) continue;
    forget(e.key);
    if (!b.affinity.empty()) {
      // Its owner's index entry, best effort: an entry left behind is dropped or completed
      // by the owner's next allocation, as after an interrupted claim.
      std::string index = records::affinity_key(b.affinity, pool.name, b.cidr);
      if (auto ie = store_.get(index)) store_.erase_if(index, ie->revision);
    }
    return b.cidr;
  }
  return std::nullopt;
}

bool BlockAllocator::has_reclaimable_block(const PoolConfig& pool) {
  if (options_.empty_block_grace_s <= 0) return false;
  for (const auto& e : store_.list(records::blocks_prefix(pool.name))) {
    if (!records::parse_block_key(e.key)) continue;
    Block b = decode_block(e).block;
    if (b.allocations.empty() && b.empty_since && has_usable(pool, b.cidr) &&
        options_.now() - *b.empty_since >= options_.empty_block_grace_s) {
      return true;
    }
  }
  return false;
}

bool BlockAllocator::at_cap(const PoolConfig&, size_t owned) const {
  return options_.max_blocks_per_node > 0 && owned >= options_.max_blocks_per_node;
}

// ---- assignment -------------------------------------------------------------------------

Assignment BlockAllocator::assign_auto(const Handle& handle, HandleState& state, int family) {
  auto pools = pools_of(family);
  auto usable_of = [](const PoolConfig& p) {
    return [&p](const IpAddress& ip) { return p.usable(ip); };
  };
  // The pool records are checked when a block is claimed or borrowed, not on this fast path:
  // blocks of another size than the config's are not this node's blocks (is_block), so a
  // changed blockSize always ends in a claim, where it is refused.
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      backoff(attempt);
      // A write whose answer was lost may have happened: adopt it rather than take another.
      state = load_handle(handle);
      for (const auto& a : verify(handle, state)) {
        if (a.ip.family() == family)
          return Assignment{a.pool, a.block, a.ip, a.seq, a.block_affinity, a.borrowed, false};
      }
    }
    try {
      // 1. This node's blocks.
      std::vector<size_t> owned(pools.size());
      for (size_t i = 0; i < pools.size(); ++i) {
        const PoolConfig& pool = *pools[i];
        auto blocks = affine_blocks(pool);
        owned[i] = blocks.size();
        std::vector<size_t> with_space;
        for (size_t j = 0; j < blocks.size(); ++j) {
          if (!blocks[j].second) {
            auto k = records::parse_block_key(blocks[j].first);  // made by key_of: parses
            if (auto a = claim(handle, state, pool, k->cidr, std::nullopt)) return *a;
            continue;
          }
          if (blocks[j].second->block.find_free(usable_of(pool))) with_space.push_back(j);
        }
        if (!with_space.empty()) {
          // First fit keeps blocks dense; after a lost race, a random one of them spreads
          // the competing writers of this node over its blocks.
          size_t pick = with_space.front();
          if (attempt > 0) {
            pick =
                with_space[std::uniform_int_distribution<size_t>(0, with_space.size() - 1)(rng())];
          }
          return take(handle, state, pool, blocks[pick].first, std::move(*blocks[pick].second),
                      std::nullopt);
        }
      }
      // 2. A free block.
      std::string why;
      for (size_t i = 0; i < pools.size(); ++i) {
        const PoolConfig& pool = *pools[i];
        if (at_cap(pool, owned[i])) {
          why += "node " + options_.node + " owns " + std::to_string(owned[i]) +
                 " full blocks of pool " + pool.name + " (maxBlocksPerNode " +
                 std::to_string(options_.max_blocks_per_node) + "); ";
          continue;
        }
        if (auto cidr = find_free_block(pool)) {
          if (auto a = claim(handle, state, pool, *cidr, std::nullopt)) return *a;
        } else if (auto empty = reclaim_empty_block(pool)) {
          // Every block is claimed, but one has been empty for its grace period: released
          // (deleted) just now, it is claimed like a block never claimed.
          if (auto a = claim(handle, state, pool, *empty, std::nullopt)) return *a;
        } else {
          why += "every block of pool " + pool.name + " is claimed" +
                 (options_.empty_block_grace_s > 0
                      ? " and none has been empty for " +
                            std::to_string(options_.empty_block_grace_s) + " s"
                      : "") +
                 "; ";
        }
      }
      // 3. Borrow from another node's block.
      if (options_.strict_affinity) {
        why += "strictAffinity forbids borrowing from other nodes' blocks";
        throw exhausted(pools, why);
      }
      for (const auto* pool : pools) {
        check_pool_record(*pool);
        std::vector<std::pair<std::string, Loaded>> candidates;
        for (auto& e : store_.list(records::blocks_prefix(pool->name))) {
          if (!records::parse_block_key(e.key)) continue;
          Loaded l = decode_block(e);
          if (l.block.find_free(usable_of(*pool))) candidates.emplace_back(e.key, std::move(l));
        }
        if (candidates.empty()) continue;
        // Borrowers of different nodes start at different blocks.
        size_t start = node_pool_hash(options_.node, pool->name) % candidates.size();
        if (attempt > 0) {
          start = std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng());
        }
        auto& [key, l] = candidates[start];
        return take(handle, state, *pool, key, std::move(l), std::nullopt);
      }
      why += "no block of any other node has a free address";
      throw exhausted(pools, why);
    } catch (const Conflict&) {
      continue;
    }
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up allocating an " + family_name(family) +
                                               " address from pool " + join_names(pools) +
                                               " after " + std::to_string(options_.max_attempts) +
                                               " conflicting writes");
}

Assignment BlockAllocator::assign_requested(const Handle& handle, HandleState& state,
                                            const AddressRequest& req, const PoolConfig& pool) {
  IpNet cidr = pool.layout.block_of(req.ip);
  std::string key = key_of(pool, cidr);
  uint32_t ord = pool.layout.ordinal(req.ip);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      backoff(attempt);
      state = load_handle(handle);
      for (const auto& a : verify(handle, state)) {
        if (a.ip == req.ip) {
          return Assignment{a.pool, a.block, a.ip, a.seq, a.block_affinity, a.borrowed, false};
        }
      }
    }
    try {
      auto loaded = load_block(key);
      if (!loaded) {
        if (at_cap(pool, affine_blocks(pool).size())) {
          throw request_unavailable(req, "needs block " + cidr.str() + " of pool " + pool.name +
                                             " claimed, but node " + options_.node + " owns " +
                                             std::to_string(options_.max_blocks_per_node) +
                                             " blocks of it (maxBlocksPerNode)");
        }
        if (auto a = claim(handle, state, pool, cidr, ord)) return *a;
        throw request_unavailable(req, "is not usable");
      }
      const Block& b = loaded->block;
      if (auto it = b.allocations.find(ord); it != b.allocations.end()) {
        throw request_unavailable(
            req, "is not available in pool " + pool.name + " (held by " + it->second.handle + ")");
      }
      if (options_.strict_affinity && b.affinity != options_.node) {
        throw request_unavailable(req, "is in block " + cidr.str() + " of node " + b.affinity +
                                           " and strictAffinity forbids borrowing");
      }
      if (b.affinity != options_.node) check_pool_record(pool);
      return take(handle, state, pool, key, std::move(*loaded), ord);
    } catch (const Conflict&) {
      continue;
    }
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up allocating " + req.ip.str() + " after " +
                                               std::to_string(options_.max_attempts) +
                                               " conflicting writes");
}

std::vector<Assignment> BlockAllocator::assign(const Handle& handle,
                                               const std::vector<AddressRequest>& requested) {
  // Which family each requested address serves, and in which pool.
  std::vector<std::pair<int, const AddressRequest*>> wanted;  // family, request (or null)
  std::map<int, const PoolConfig*> requested_pool;
  auto pools = pools_of_requests(pools_, requested);
  for (size_t i = 0; i < requested.size(); ++i) {
    requested_pool[requested[i].ip.family()] = pools[i];
    wanted.emplace_back(requested[i].ip.family(), &requested[i]);
  }
  const std::vector<const PoolConfig*> candidates = this->candidates();
  for (const PoolConfig* p : candidates) {
    bool have = std::any_of(wanted.begin(), wanted.end(),
                            [&](const auto& w) { return w.first == p->family(); });
    if (!have) wanted.emplace_back(p->family(), nullptr);
  }
  if (wanted.empty()) {
    throw cni::Error(kErrNoAddress,
                     "no pool selects node " + options_.node +
                         (options_.pools ? " and this pod (namespaceSelector)"
                                         : " (every pool's nodeSelector excludes it)"));
  }

  // One round trip for the handle, this node's block index of every pool it may use and the
  // blocks the cache names (the index usually lists exactly those: then affine_blocks needs
  // no read of its own).
  std::vector<KvStore::Read> reads = {{handle.key()}};
  size_t indexes = 0;
  for (const PoolConfig* p : candidates) {
    reads.push_back({records::affinity_prefix(options_.node, p->name), true, true});
    ++indexes;
  }
  if (options_.cache) {
    for (const auto& [key, e] : options_.cache->blocks()) reads.push_back({key});
  }
  // The node's record and the pools' (a claim checks them): in the same etcd txn, where
  // they cost next to nothing (a local store reads them when a claim needs them).
  size_t records_at = reads.size();
  if (store_.transactions()) {
    reads.push_back({records::node_key(options_.node)});
    for (const PoolConfig* p : candidates) reads.push_back({records::pool_key(p->name)});
  }
  // With transactions and a cache that predicts a block for every family, that round trip
  // is the write itself, and the reads come only when the prediction was wrong.
  std::vector<std::vector<KvEntry>> batch;
  std::vector<bool> unread(reads.size(), false);  // left out of a refused prediction's reads
  if (requested.empty() && options_.cache && store_.transactions() &&
      !options_.cache->handle(handle.key())) {
    std::vector<int> families;
    for (const auto& w : wanted) families.push_back(w.first);
    if (auto got = assign_from_cache(handle, families, reads, &batch, &unread)) return *got;
  }
  if (batch.empty()) batch = store_.read_batch(reads);
  prefetched_.clear();
  prefetched_blocks_.clear();
  prefetched_records_.clear();
  index_revisions_.clear();
  for (size_t i = 1; i <= indexes; ++i) prefetched_[reads[i].key] = std::move(batch[i]);
  auto first = [&](size_t i) {
    return batch[i].empty() ? std::nullopt : std::optional<KvEntry>(std::move(batch[i].front()));
  };
  for (size_t i = 1 + indexes; i < records_at; ++i) {
    if (!unread[i]) prefetched_blocks_[reads[i].key] = first(i);
  }
  for (size_t i = records_at; i < reads.size(); ++i) prefetched_records_[reads[i].key] = first(i);
  HandleState state = batch[0].empty() ? HandleState{} : decode_handle(batch[0].front());
  std::vector<Assignment> held_now = verify(handle, state);
  if (state.record) {
    // Entries the blocks do not confirm are stale intents: the next write drops them.
    auto& entries = state.record->entries;
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&](const HandleEntry& e) {
                                   return std::none_of(held_now.begin(), held_now.end(),
                                                       [&](const Assignment& a) {
                                                         return a.ip == e.ip && a.seq == e.seq;
                                                       });
                                 }),
                  entries.end());
  }

  std::vector<Assignment> out;
  std::vector<Assignment> taken;
  // The prefetched listings are for this call only.
  struct ClearPrefetched {
    BlockAllocator& a;
    ~ClearPrefetched() {
      a.prefetched_.clear();
      a.prefetched_blocks_.clear();
      a.prefetched_records_.clear();
    }
  } clear_prefetched{*this};
  try {
    for (const auto& [family, req] : wanted) {
      // A copy of the binding: clang before 16 cannot capture a structured binding.
      auto held_it =
          std::find_if(held_now.begin(), held_now.end(), [&, want = family](const Assignment& a) {
            return a.ip.family() == want && pool_named(a.pool);
          });
      if (held_it != held_now.end()) {
        if (req && req->ip != held_it->ip) {
          throw request_unavailable(
              *req, "was asked for, but " + handle.id() + " already holds " + held_it->ip.str());
        }
        out.push_back(*held_it);
        continue;
      }
      Assignment a = req ? assign_requested(handle, state, *req, *requested_pool[family])
                         : assign_auto(handle, state, family);
      taken.push_back(a);
      out.push_back(a);
    }
  } catch (...) {
    // A failed ADD leaves nothing behind: give back what this call took (only that).
    for (const auto& a : taken) {
      try {
        release_address(a.pool, a.block, a.ip, handle.id(), a.seq);
      } catch (const std::exception&) {
        // The store went away: the handle record still names the address, so the DEL the
        // runtime sends after a failed ADD (or GC) releases it.
      }
    }
    if (held_now.empty()) {
      try {
        HandleState now = load_handle(handle);
        if (now.record && verify(handle, now).empty()) store_.erase_if(handle.key(), now.revision);
      } catch (const std::exception&) {
      }
    }
    throw;
  }
  return out;
}

std::optional<std::vector<Assignment>> BlockAllocator::assign_from_cache(
    const Handle& handle, const std::vector<int>& families, const std::vector<KvStore::Read>& reads,
    std::vector<std::vector<KvEntry>>* fresh, std::vector<bool>* unread) {
  // The choice the full path would make: per family, the pools in order, this node's blocks
  // in key order, the first with a free address.
  HandleRecord rec;
  rec.node = options_.node;
  std::vector<KvStore::Write> writes = {{handle.key(), "", 0}};  // a new handle: absent
  std::vector<Assignment> out;
  for (int family : families) {
    bool found = false;
    for (const PoolConfig* pool : pools_of(family)) {
      std::string prefix = records::blocks_prefix(pool->name);
      for (const auto& [key, e] : options_.cache->blocks()) {
        if (key.compare(0, prefix.size(), prefix) != 0) continue;
        // A full block (the most of a busy node's) is passed over without decoding it.
        auto k = records::parse_block_key(key);
        int host_bits = k ? k->cidr.ip.bits() - k->cidr.prefix : 64;
        auto n = host_bits < 32 ? Block::count_allocations(e.value) : std::nullopt;
        if (n && *n >= (uint64_t{1} << host_bits)) continue;
        Block b;
        try {
          b = Block::decode(e.value);
        } catch (const std::exception&) {
          continue;
        }
        if (b.affinity != options_.node || !pool->layout.is_block(b.cidr)) continue;
        auto ord = b.find_free([&](const IpAddress& ip) { return pool->usable(ip); });
        if (!ord) continue;
        IpAddress ip = b.address(*ord);
        uint64_t seq = b.assign(*ord, handle.id(), options_.node);
        rec.entries.push_back(HandleEntry{pool->name, b.cidr, ip, seq});
        out.push_back(Assignment{pool->name, b.cidr, ip, seq, b.affinity, false, false});
        writes.push_back({key, encode(b), e.revision});
        found = true;
        break;
      }
      if (found) break;
    }
    if (!found) return std::nullopt;
  }
  writes[0].value = rec.to_json().dump();
  // The refusal reads the handle, the indexes, the records and the blocks written; not the
  // node's other cached blocks (every op of a txn, its failure branch too, is parsed by the
  // gateway and goes into raft's log): affine_blocks() reads those if the full path needs
  // them, one round trip more when the cache was wrong.
  std::vector<KvStore::Read> refusal;
  std::vector<size_t> at;
  for (size_t i = 0; i < reads.size(); ++i) {
    bool block = !reads[i].prefix && reads[i].key.rfind(records::blocks_prefix(), 0) == 0;
    bool written = std::any_of(writes.begin(), writes.end(),
                               [&](const KvStore::Write& w) { return w.key == reads[i].key; });
    if (block && !written) {
      (*unread)[i] = true;
    } else {
      refusal.push_back(reads[i]);
      at.push_back(i);
    }
  }
  auto outcome = store_.put_all_if_or_read(writes, refusal);
  if (!outcome.revisions) {
    fresh->assign(reads.size(), {});
    for (size_t j = 0; j < at.size(); ++j) (*fresh)[at[j]] = std::move(outcome.reads[j]);
    return std::nullopt;
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    remember(writes[i].key, writes[i].value, (*outcome.revisions)[i]);
  }
  return out;
}

// ---- release ----------------------------------------------------------------------------

Block::ReleaseOutcome BlockAllocator::release_address(const std::string& pool, const IpNet& block,
                                                      const IpAddress& ip,
                                                      const std::string& handle,
                                                      std::optional<uint64_t> seq) {
  std::string key = records::block_key(pool, block);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) backoff(attempt);
    auto loaded = load_block(key);
    if (!loaded || !loaded->block.cidr.contains(ip)) return Block::ReleaseOutcome::kNotAllocated;
    auto outcome = loaded->block.release(loaded->block.ordinal(ip), handle, seq);
    if (outcome != Block::ReleaseOutcome::kReleased) return outcome;
    note_empty(loaded->block);
    std::string value = encode(loaded->block);
    if (auto rev = store_.put_if(key, value, loaded->revision)) {
      if (loaded->block.affinity == options_.node) remember(key, value, *rev);
      return outcome;
    }
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up releasing " + ip.str() + " in " + key +
                                               " after " + std::to_string(options_.max_attempts) +
                                               " conflicting writes");
}

std::vector<Assignment> BlockAllocator::held(const Handle& handle) {
  return verify(handle, load_handle(handle));
}

std::optional<std::vector<Assignment>> BlockAllocator::release_from_cache(
    const Handle& handle, std::vector<KvStore::Read>* reads,
    std::vector<std::vector<KvEntry>>* fresh) {
  const KvEntry* cached = options_.cache->handle(handle.key());
  if (!cached) return std::nullopt;
  HandleRecord rec;
  try {
    rec = HandleRecord::from_json(nlohmann::json::parse(cached->value));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  // The blocks it names, as cached; all of them or no prediction.
  std::map<std::string, std::pair<Block, int64_t>> blocks;
  for (const auto& e : rec.entries) {
    std::string key = records::block_key(e.pool, e.block);
    if (blocks.count(key)) continue;
    auto it = options_.cache->blocks().find(key);
    if (it == options_.cache->blocks().end()) return std::nullopt;
    try {
      blocks.emplace(key, std::make_pair(Block::decode(it->second.value), it->second.revision));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  reads->push_back({handle.key()});
  for (const auto& [key, b] : blocks) reads->push_back({key});
  std::vector<Assignment> released;
  std::set<std::string> changed;
  for (const auto& e : rec.entries) {
    std::string key = records::block_key(e.pool, e.block);
    Block& b = blocks.at(key).first;
    if (!b.cidr.contains(e.ip)) continue;
    if (b.release(b.ordinal(e.ip), handle.id(), e.seq) != Block::ReleaseOutcome::kReleased) {
      continue;  // a stale intent
    }
    note_empty(b);
    changed.insert(key);
    released.push_back(Assignment{e.pool, e.block, e.ip, e.seq, "", false, false});
  }
  std::vector<KvStore::Write> writes;
  for (const auto& key : changed) {
    writes.push_back({key, encode(blocks.at(key).first), blocks.at(key).second});
  }
  writes.push_back({handle.key(), "", cached->revision, true});
  auto outcome = store_.put_all_if_or_read(writes, *reads);
  if (!outcome.revisions) {
    *fresh = std::move(outcome.reads);
    return std::nullopt;
  }
  forget(handle.key());
  for (size_t i = 0; i + 1 < writes.size(); ++i) {
    remember(writes[i].key, writes[i].value, (*outcome.revisions)[i]);
  }
  return released;
}

std::vector<Assignment> BlockAllocator::release(const Handle& handle) {
  // With transactions and a cache that knows the handle and its blocks: one round trip.
  std::vector<KvStore::Read> reads;
  std::vector<std::vector<KvEntry>> fresh;
  if (options_.cache && store_.transactions()) {
    if (auto got = release_from_cache(handle, &reads, &fresh)) return *got;
  }
  // Else: the handle, its blocks (one batch), then one write of the blocks and the handle's
  // deletion (one etcd txn; on the file store the blocks first, so that a crash in between
  // leaves a record naming released addresses: stale intents, which the next DEL removes).
  std::vector<Assignment> released;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) backoff(attempt);
    HandleState state;
    std::map<std::string, std::optional<KvEntry>> found;
    if (!fresh.empty()) {
      if (!fresh[0].empty()) state = decode_handle(fresh[0].front());
      for (size_t i = 1; i < reads.size(); ++i) {
        if (!fresh[i].empty()) found[reads[i].key] = std::move(fresh[i].front());
      }
      fresh.clear();
    } else {
      state = load_handle(handle);
    }
    if (!state.record) {
      forget(handle.key());
      return released;
    }
    std::vector<KvStore::Read> missing;
    for (const auto& e : state.record->entries) {
      std::string key = records::block_key(e.pool, e.block);
      if (!found.count(key) && std::none_of(missing.begin(), missing.end(),
                                            [&](const auto& r) { return r.key == key; })) {
        missing.push_back({key});
      }
    }
    auto got = store_.read_batch(missing);
    for (size_t i = 0; i < missing.size(); ++i) {
      found[missing[i].key] = got[i].empty() ? std::nullopt : std::optional(std::move(got[i][0]));
    }
    std::map<std::string, Loaded> blocks;
    for (const auto& [key, e] : found) {
      if (e) blocks.emplace(key, decode_block(*e));
    }
    std::map<std::string, std::vector<Assignment>> freed;  // block key -> what it frees
    for (const auto& e : state.record->entries) {
      std::string key = records::block_key(e.pool, e.block);
      auto it = blocks.find(key);
      if (it == blocks.end() || !it->second.block.cidr.contains(e.ip)) continue;
      Block& b = it->second.block;
      if (b.release(b.ordinal(e.ip), handle.id(), e.seq) != Block::ReleaseOutcome::kReleased) {
        continue;
      }
      note_empty(b);
      freed[key].push_back(Assignment{e.pool, e.block, e.ip, e.seq, "", false, false});
    }
    std::vector<KvStore::Write> writes;
    for (const auto& [key, f] : freed) {
      writes.push_back({key, encode(blocks.at(key).block), blocks.at(key).revision});
    }
    writes.push_back({handle.key(), "", state.revision, true});
    // One txn where the store has them; else one write after the other (put_all_if's order),
    // counting what each block write freed, since those happened even if a later one fails.
    std::optional<std::vector<int64_t>> revs;
    if (store_.transactions()) {
      revs = store_.put_all_if(writes);
    } else {
      std::vector<int64_t> done;
      for (const auto& w : writes) {
        if (w.erase) {
          if (!store_.erase_if(w.key, w.expected)) break;
          done.push_back(0);
        } else if (auto rev = store_.put_if(w.key, w.value, w.expected)) {
          done.push_back(*rev);
          for (const auto& a : freed.at(w.key)) released.push_back(a);
          freed.erase(w.key);
        } else {
          break;
        }
      }
      if (done.size() == writes.size()) revs = std::move(done);
    }
    if (revs) {
      for (const auto& [key, f] : freed) released.insert(released.end(), f.begin(), f.end());
      forget(handle.key());
      for (size_t i = 0; i + 1 < writes.size(); ++i) {
        if (blocks.at(writes[i].key).block.affinity == options_.node) {
          remember(writes[i].key, writes[i].value, (*revs)[i]);
        }
      }
      return released;
    }
    // Something changed meanwhile (an ADD of the same handle, a competing writer): again.
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up releasing " + handle.id() + " after " +
                                               std::to_string(options_.max_attempts) +
                                               " conflicting writes");
}

BlockAllocator::GcReport BlockAllocator::collect(const GcScope& scope,
                                                 const std::function<bool(const Handle&)>& valid,
                                                 bool dry_run) {
  GcReport report;
  auto attempt = [&](const std::string& what, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      report.errors.push_back(what + ": " + e.what());
    }
  };
  auto in_scope = [&](const Handle& h, const std::string& node) {
    return (scope.network.empty() || h.network == scope.network) &&
           (scope.node.empty() || node == scope.node);
  };
  // 1. Handle records.
  std::set<std::string> recorded;
  std::string prefix =
      scope.network.empty() ? records::handles_prefix() : records::handles_prefix(scope.network);
  std::vector<KvEntry> handles;
  attempt("listing " + prefix, [&] { handles = store_.list(prefix); });
  for (const auto& e : handles) {
    auto handle = records::parse_handle_key(e.key);
    if (!handle) continue;  // not a handle record (`global-ipam check` reports it)
    recorded.insert(handle->id());
    attempt(e.key, [&] {
      auto rec = decode_handle(e).record;
      if (!in_scope(*handle, rec->node) || valid(*handle)) return;
      for (auto& a : dry_run ? held(*handle) : release(*handle)) {
        report.released.push_back(Collected{std::move(a), handle->id(), rec->node});
      }
    });
  }
  // 2. Allocations no handle record names.
  std::vector<KvEntry> blocks;
  if (scope.every_block || scope.node.empty()) {
    attempt("listing blocks", [&] { blocks = store_.list(records::blocks_prefix()); });
  } else {
    attempt("listing the blocks of node " + scope.node, [&] {
      std::vector<KvStore::Read> reads;
      for (const auto& e : store_.list(records::affinity_prefix(scope.node), true)) {
        if (auto k = records::parse_affinity_key(e.key)) {
          reads.push_back({records::block_key(k->pool, k->cidr)});
        }
      }
      for (auto& found : store_.read_batch(reads)) {
        for (auto& e : found) blocks.push_back(std::move(e));
      }
    });
  }
  for (const auto& e : blocks) {
    if (!records::parse_block_key(e.key)) continue;  // not a block (`global-ipam check`)
    attempt(e.key, [&] {
      Block b = decode_block(e).block;
      for (const auto& [ord, a] : b.allocations) {
        auto handle = Handle::parse(a.handle);
        if (!handle || recorded.count(a.handle) || !in_scope(*handle, a.node) || valid(*handle)) {
          continue;
        }
        if (store_.get(handle->key())) continue;  // recorded after the listing
        IpAddress ip = b.address(ord);
        Assignment got{b.pool, b.cidr, ip, a.seq, b.affinity, b.borrowed(a), false};
        if (dry_run || release_address(b.pool, b.cidr, ip, a.handle, a.seq) ==
                           Block::ReleaseOutcome::kReleased) {
          report.released.push_back(Collected{got, a.handle, a.node});
        }
      }
    });
  }
  return report;
}

void BlockAllocator::check_available() {
  std::vector<int> families;
  for (const auto& p : pools_) {
    if (p.selects(options_.node) &&
        std::find(families.begin(), families.end(), p.family()) == families.end()) {
      families.push_back(p.family());
    }
  }
  for (int family : families) {
    auto pools = pools_of(family);
    bool ok = false;
    for (const auto* pool : pools) {
      auto blocks = affine_blocks(*pool);
      for (const auto& [key, loaded] : blocks) {
        if (!loaded ||
            loaded->block.find_free([&](const IpAddress& ip) { return pool->usable(ip); })) {
          ok = true;
        }
      }
      if (!ok && !at_cap(*pool, blocks.size()) &&
          (find_free_block(*pool) || has_reclaimable_block(*pool))) {
        ok = true;
      }
      if (ok) break;
    }
    if (!ok && !options_.strict_affinity) {
      for (const auto* pool : pools) {
        for (const auto& e : store_.list(records::blocks_prefix(pool->name))) {
          if (!records::parse_block_key(e.key)) continue;
          Block b = Block::decode(e.value);
          if (b.find_free([&](const IpAddress& ip) { return pool->usable(ip); })) ok = true;
        }
        if (ok) break;
      }
    }
    if (!ok) throw exhausted(pools, "node " + options_.node + " cannot get another address");
  }
}

}  // namespace ipam
