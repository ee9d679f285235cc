#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/ip.h"

namespace ipam {

// One address of a block given to one handle.
struct BlockAllocation {
  std::string handle;  // "<network>/<containerID>/<ifname>"
  uint64_t seq = 0;    // the block's sequence number when it was given (see Block::seq)
  std::string node;    // the node that took it: the block's affinity, or a borrower
  bool operator==(const BlockAllocation&) const = default;
};

// A block as stored: one compare-and-swap object (Calico's IPAMBlock). Every change of an
// allocation is a read-modify-write of the whole record guarded by its store revision.
struct Block {
  cni::IpNet cidr;
  std::string pool;
  std::string affinity;  // the node that owns the block; empty: nobody (never claimed so)
  // Bumped by every assignment and stored with it: an address released and given again gets
  // a new number, so a release that names the old number (a stale DEL, a report made before
  // the address changed hands) keeps the address (Calico's sequenceNumberForAllocation).
  uint64_t seq = 0;
  // Where the search for a free address starts: one after the last address given, so that a
  // just-released address is the last one handed out again (round robin, as host-local).
  uint32_t next = 0;
  std::map<uint32_t, BlockAllocation> allocations;  // by ordinal
  // When the block lost its last allocation (unix seconds; stored as "emptySince"), unset
  // while it holds one. An empty block whose grace period (emptyBlockGraceSeconds) has
  // passed is released by the next node that needs a block: deleted with a
  // compare-and-swap on the revision it was seen empty at, then claimed anew. A block
  // written before this field existed is stamped when first seen empty.
  std::optional<int64_t> empty_since;

  uint32_t size() const { return 1u << (cidr.ip.bits() - cidr.prefix); }
  cni::IpAddress address(uint32_t ordinal) const { return cidr.ip + static_cast<int64_t>(ordinal); }
  uint32_t ordinal(const cni::IpAddress& ip) const { return static_cast<uint32_t>(ip - cidr.ip); }
  bool borrowed(const BlockAllocation& a) const { return a.node != affinity; }

  // The first free ordinal from `next` on (wrapping) whose address `usable` accepts.
  std::optional<uint32_t> find_free(const std::function<bool(const cni::IpAddress&)>& usable) const;
  // Number of free addresses that `usable` accepts.
  uint32_t free_count(const std::function<bool(const cni::IpAddress&)>& usable) const;
  // Gives a free ordinal to `handle`, taken by `node`; returns the sequence number recorded.
  uint64_t assign(uint32_t ordinal, const std::string& handle, const std::string& node);

  enum class ReleaseOutcome {
    kReleased,
    kNotAllocated,  // nothing there: already released
    kOtherHandle,   // given to another handle since
    kBadSequence,   // same handle, but released and given again since
  };
  // Frees `ordinal` only when it is still held by `handle` with sequence number `seq`
  // (nullopt: any number).
  ReleaseOutcome release(uint32_t ordinal, const std::string& handle, std::optional<uint64_t> seq);
  // Ordinals held by `handle`.
  std::vector<uint32_t> ordinals_of(const std::string& handle) const;

  // The two stored forms; from_json and decode read either.
  //  - Verbose (to_json): {"cidr", "pool", "affinity", "seq", "next", "emptySince",
  //    "allocations": [{"ordinal", "handle", "seq", "node"}]}. The file store writes it: its
  //    files are read by people and by tests.
  //  - Compact (to_compact_json): {"v": 2, "c": cidr, "p": pool, "n": affinity, "s": seq,
  //    "x": next, "e": emptySince, "a": [[ordinal, seq, handle], [ordinal, seq, handle, node],
  //    ...]}, the node only for a borrowed address (else it is the affinity): about a third of
  //    the verbose bytes. etcd stores it (KvStore::compact_values): each value crosses its JSON
  //    gateway in base64 and goes into raft's log and bbolt, so an allocation's cost there
  //    grows with the block's size. Its keys differ from the verbose ones on purpose: a
  //    version of global-ipam that knows only the verbose form fails on a compact block
  //    ("malformed block record", no "cidr") instead of reading it as empty.
  nlohmann::json to_json() const;
  nlohmann::json to_compact_json() const;
  // The stored value in one of the forms.
  std::string encode(bool compact) const;
  // Throws std::invalid_argument naming what is wrong with a stored block.
  static Block from_json(const nlohmann::json& j);
  // A stored value (either form); throws std::invalid_argument.
  static Block decode(const std::string& value);
  // How many allocations a stored value (either form) holds, counted without decoding it: the
  // elements of its one array-valued member ("a" or "allocations"). nullopt when the value
  // is not shaped so (decode() says what is wrong). A block holding size() of them is full:
  // the node's cache passes over its full blocks without decoding each on every ADD.
  static std::optional<size_t> count_allocations(std::string_view value);
  bool operator==(const Block&) const = default;
};

}  // namespace ipam
