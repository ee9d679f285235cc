#include "ipam/global/block_allocator.h"

#include <netinet/in.h>

#include <algorithm>
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
    : pools_(pools), store_(store), options_(std::move(options)), rng_(std::random_device{}()) {
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::microseconds d) { std::this_thread::sleep_for(d); };
  }
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

// ---- lookups ----------------------------------------------------------------------------

const PoolConfig* BlockAllocator::pool_named(const std::string& name) const {
  for (const auto& p : pools_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<const PoolConfig*> BlockAllocator::pools_of(int family) const {
  std::vector<const PoolConfig*> out;
  for (const auto& p : pools_) {
    if (p.family() == family && p.selects(options_.node)) out.push_back(&p);
  }
  return out;
}

std::string BlockAllocator::key_of(const PoolConfig& pool, const IpNet& block) const {
  return records::block_key(pool.name, block);
}

BlockAllocator::Loaded BlockAllocator::decode_block(const KvEntry& e) const {
  try {
    return Loaded{Block::from_json(nlohmann::json::parse(e.value)), e.revision};
  } catch (const std::exception& ex) {
    throw std::runtime_error(store_.describe() + ": " + e.key + ": " + ex.what());
  }
}

std::optional<BlockAllocator::Loaded> BlockAllocator::load_block(const std::string& key) {
  auto e = store_.get(key);
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

// ---- writes -----------------------------------------------------------------------------

void BlockAllocator::backoff(int attempt) {
  // Jittered exponential backoff: up to 0.5 ms * 2^attempt, at most 20 ms.
  int64_t cap = std::min<int64_t>(int64_t{500} << std::min(attempt, 6), 20000);
  std::uniform_int_distribution<int64_t> d(cap / 4, cap);
  options_.sleep(std::chrono::microseconds(d(rng_)));
}

void BlockAllocator::write_with_intent(const Handle& handle, HandleState& state,
                                       const HandleEntry& entry, const std::string& block_key,
                                       const Block& block, int64_t block_revision) {
  HandleRecord rec = state.record.value_or(HandleRecord{});
  rec.node = options_.node;
  rec.entries.push_back(entry);
  // The intent first: on a store without transactions a crash between the two writes leaves
  // an intent the block does not confirm (harmless), never an allocation nobody can find.
  auto revs = store_.put_all_if({{handle.key(), rec.to_json().dump(), state.revision},
                                 {block_key, block.to_json().dump(), block_revision}});
  if (!revs) throw Conflict{};
  state.record = std::move(rec);
  state.revision = revs->front();
}

void BlockAllocator::check_pool_record(const PoolConfig& pool) {
  if (pool_checked_[pool.name]) return;
  records::PoolRecord want{pool.cidr(), pool.layout.block_size()};
  std::string key = records::pool_key(pool.name);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    auto e = store_.get(key);
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
  std::string key = records::node_key(options_.node);
  if (store_.get(key)) return;
  records::NodeRecord rec;
  rec.name = options_.node;
  store_.put_if(key, rec.to_json().dump(), 0);  // lost to a concurrent create: fine
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
  auto blocks = store_.read_batch(reads);  // every block of the node in one round trip
  std::vector<std::pair<std::string, std::optional<Loaded>>> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    std::optional<Loaded> loaded;
    if (!blocks[i].empty()) loaded = decode_block(blocks[i].front());
    if (loaded && loaded->block.affinity != options_.node) {
      // The claim that wrote this entry lost the block to another node: drop the entry.
      store_.erase_if(entries[i].key, entries[i].revision);
      continue;
    }
    // No block: a claim that crashed between the index entry and the block; the caller
    // completes it.
    out.emplace_back(reads[i].key, std::move(loaded));
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
  ensure_node();
  Block b;
  b.cidr = cidr;
  b.pool = pool.name;
  b.affinity = options_.node;
  auto usable = [&](const IpAddress& ip) { return pool.usable(ip); };
  auto ord = ordinal ? ordinal : b.find_free(usable);
  if (!ord) return std::nullopt;  // a block of unusable addresses only (a /32 at the gateway)
  // The index entry first: a crash after it leaves an entry without a block, which this
  // node's next allocation completes; the other order could leave a block nobody lists.
  store_.put_if(records::affinity_key(options_.node, pool.name, cidr), "{}", 0);
  IpAddress ip = b.address(*ord);
  uint64_t seq = b.assign(*ord, handle.id(), options_.node);
  write_with_intent(handle, state, HandleEntry{pool.name, cidr, ip, seq}, key_of(pool, cidr), b, 0);
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
  for (int k = 0; k < options_.probes; ++k) {
    IpNet cidr = layout.block(layout.probe(hash, static_cast<cni::Uint128>(k)));
    if (has_usable(pool, cidr) && !store_.get(key_of(pool, cidr))) return cidr;
  }
  // Nearly full: the probe order is a permutation, so a free block (if any) comes within
  // (existing blocks + the few all-unusable ones + 1) steps.
  auto keys = existing_keys();
  cni::Uint128 bound = std::min<cni::Uint128>(n, keys.size() + 4);
  return free_in(keys, bound);
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
                with_space[std::uniform_int_distribution<size_t>(0, with_space.size() - 1)(rng_)];
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
        } else {
          why += "every block of pool " + pool.name + " is claimed; ";
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
          start = std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_);
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
  for (const auto& p : pools_) {
    if (!p.selects(options_.node)) continue;
    bool have = std::any_of(wanted.begin(), wanted.end(),
                            [&](const auto& w) { return w.first == p.family(); });
    if (!have) wanted.emplace_back(p.family(), nullptr);
  }
  if (wanted.empty()) {
    throw cni::Error(kErrNoAddress, "no pool selects node " + options_.node +
                                        " (every pool's nodeSelector excludes it)");
  }

  // One round trip for the handle and this node's block index of every pool it may use.
  std::vector<KvStore::Read> reads = {{handle.key()}};
  for (const auto& p : pools_) {
    if (p.selects(options_.node)) {
      reads.push_back({records::affinity_prefix(options_.node, p.name), true, true});
    }
  }
  auto batch = store_.read_batch(reads);
  prefetched_.clear();
  for (size_t i = 1; i < reads.size(); ++i) prefetched_[reads[i].key] = std::move(batch[i]);
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
    std::map<std::string, std::vector<KvEntry>>& m;
    ~ClearPrefetched() { m.clear(); }
  } clear_prefetched{prefetched_};
  try {
    for (const auto& [family, req] : wanted) {
      auto held_it = std::find_if(held_now.begin(), held_now.end(), [&](const Assignment& a) {
        return a.ip.family() == family && pool_named(a.pool);
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
    if (store_.put_if(key, loaded->block.to_json().dump(), loaded->revision)) return outcome;
  }
  throw cni::Error(cni::kErrTryAgainLater, "gave up releasing " + ip.str() + " in " + key +
                                               " after " + std::to_string(options_.max_attempts) +
                                               " conflicting writes");
}

std::vector<Assignment> BlockAllocator::held(const Handle& handle) {
  return verify(handle, load_handle(handle));
}

std::vector<Assignment> BlockAllocator::release(const Handle& handle) {
  std::vector<Assignment> released;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) backoff(attempt);
    HandleState state = load_handle(handle);
    if (!state.record) return released;
    for (const auto& e : state.record->entries) {
      auto outcome = release_address(e.pool, e.block, e.ip, handle.id(), e.seq);
      if (outcome == Block::ReleaseOutcome::kReleased) {
        released.push_back(Assignment{e.pool, e.block, e.ip, e.seq, "", false, false});
      }
    }
    if (store_.erase_if(handle.key(), state.revision)) return released;
    // The record changed meanwhile (an ADD of the same handle): release what it names now.
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
      if (!ok && !at_cap(*pool, blocks.size()) && find_free_block(*pool)) ok = true;
      if (ok) break;
    }
    if (!ok && !options_.strict_affinity) {
      for (const auto* pool : pools) {
        for (const auto& e : store_.list(records::blocks_prefix(pool->name))) {
          if (!records::parse_block_key(e.key)) continue;
          Block b = Block::from_json(nlohmann::json::parse(e.value));
          if (b.find_free([&](const IpAddress& ip) { return pool->usable(ip); })) ok = true;
        }
        if (ok) break;
      }
    }
    if (!ok) throw exhausted(pools, "node " + options_.node + " cannot get another address");
  }
}

}  // namespace ipam
