#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "libcni/core/fd.h"

namespace ipam {

// Single flight of one node's allocations, best effort (Calico's /var/run/calico/ipam.lock):
// concurrent ADDs and DELs on a node would otherwise compete for the same block and lose
// compare-and-swaps to each other, each loss costing a round of reads and a backoff. The
// lock only spares that work; correctness never depends on it (every write is still a
// compare-and-swap), so when the directory cannot be used or the wait times out the
// operation goes on unlocked.
//
// Fair: waiters are served in the order they arrived (a ticket queue), so a burst of ADDs on
// a node waits about (place in the queue) x (one hold time) each, and no waiter loses
// hand-over after hand-over as with a polled flock. The queue is a directory of files, one
// per waiter, each flock()ed by its waiter for as long as it waits or holds:
//
//   <dir>/<node>.queue/tail      the last ticket handed out (8 bytes), flock()ed for the
//                                few microseconds of taking one
//   <dir>/<node>.queue/<ticket>  a waiter's file, locked by it until it releases
//
// A waiter holds the lock once no older ticket's file is locked by a live waiter that has
// not finished. It watches the newest older file (inotify: its owner closes it on release,
// on death, or when it gives up) rather than polling. The holder unlinks its file before it
// unlocks it on release, so a waiter tells "done" (unlinked) from "died or gave up" (still
// linked: the waiter removes it and goes on watching the next older one). The kernel drops
// a dead process's flocks, so a killed holder never blocks the node.
class NodeLock {
 public:
  NodeLock() = default;
  // Takes a ticket in <dir>/<node>.queue (creating the directories, 0700) and waits its turn
  // for at most `timeout`. An empty `dir` takes no lock.
  static NodeLock acquire(const std::string& dir, const std::string& node,
                          std::chrono::milliseconds timeout);
  ~NodeLock();
  NodeLock(NodeLock&& other) noexcept;
  NodeLock& operator=(NodeLock&& other) noexcept;

  bool held() const { return held_; }
  // Why it is not held ("" when it is, or when no lock was asked for).
  const std::string& why_not() const { return why_not_; }
  // The directory of the lock's queue ("" when none): the holder may keep files of its own
  // beside it (the node's block cache, block_cache.h).
  const std::string& queue_dir() const { return queue_; }

 private:
  void release();

  std::string queue_;
  std::string ticket_path_;
  cni::UniqueFd ticket_;  // our file, locked while we wait or hold
  bool held_ = false;
  std::string why_not_;
};

}  // namespace ipam
