#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ipam/global/block_allocator.h"
#include "ipam/global/store.h"

namespace ipam {

// Garbage collection of nodes that no longer exist (`global-ipam gc --live-nodes`,
// `--dead-without-record`): their handles and addresses, their blocks, their node records.
// Calico's two-observation rule, so that a slow ADD (or a node that joins while the list is
// being made) is never collected: a node found dead is first only marked
// (gc/dead-nodes/<node>: when, and the latest revision of its handle and node records); only
// a later run that finds it dead again, at least `grace_s` after the mark, with nothing of
// the node written since, collects it. A node found alive, or written for since, loses its
// mark. So a node is collected only after it was absent from two lists taken at least the
// grace period apart and nothing allocated for it in between.
//
// Collecting node N: every handle record of N and every allocation taken by N without one
// (BlockAllocator::collect, every block), then N's blocks that are empty (deleted with a
// compare-and-swap, and their index entries), N's node record and its mark. A block of N
// that still holds addresses other nodes borrowed stays N's until it is empty; then the
// empty-block rule (emptyBlockGraceSeconds) gives it back.
struct DeadNodeGc {
  std::function<bool(const std::string& node)> alive;
  int64_t grace_s = 900;  // Calico's leakGracePeriod: 15 minutes
  int64_t now = 0;        // unix seconds
  bool dry_run = false;   // report only: nothing written, no marks either
};

struct DeadNodeReport {
  std::vector<std::string> suspected;  // dead now, not yet twice: marked (or waiting)
  std::vector<std::string> collected;  // dead twice, grace apart: released
  std::vector<std::string> revived;    // marked before, alive (or written for) now: unmarked
  std::vector<BlockAllocator::Collected> released;  // addresses of the collected nodes
  std::vector<std::string> blocks_released;         // their blocks, deleted
  std::vector<std::string> blocks_kept;             // theirs, still holding others' addresses
  std::vector<std::string> errors;                  // what could not be done (the rest was)
};

DeadNodeReport collect_dead_nodes(KvStore& store, const DeadNodeGc& gc);

}  // namespace ipam
