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
//   <dir>/<node>.queue/tail      the last ticket handed out (first 8 bytes), flock()ed for the
//                                few microseconds of taking one; after its first page, the
//                                queue's wake-up words (below)
//   <dir>/<node>.queue/<ticket>  a waiter's file, locked by it until it releases
//
// A waiter holds the lock once no older ticket's file is locked by a live waiter that has
// not finished. It waits on the newest older one. The holder unlinks its file before it
// unlocks it on release, so a waiter tells "done" (unlinked) from "died or gave up" (still
// linked: the waiter removes it and goes on with the next older one). The kernel drops a
// dead process's flocks, so a killed holder never blocks the node.
//
// Waking: the tail's wake-up words are 1024 32-bit counters mapped shared (MAP_SHARED) by
// every waiter and holder. Releasing ticket t (done or giving up) closes its file, bumps
// word t % 1024 and futex-wakes it; the waiter of the next ticket sleeps on that word
// (FUTEX_WAIT on the value it read before it looked at the file, so no release is missed)
// for at most 10 ms, then looks again: a death wakes nobody, so that bound is what a killed
// holder or waiter costs the queue. The words are only a wake-up: the files' flocks alone
// say whose turn it is, so a word bumped by a stranger or not at all costs at most a look
// or 10 ms, never the order. Not inotify on the older file, as before: closing an inotify
// instance that had a watch waits for an SRCU grace period (8 to 20 ms measured, more on a
// busy machine), and the new holder paid it inside its hold, every hand-over of a busy node.
// A file system that cannot map the tail gets a look every millisecond instead. The tail only
// ever grows (a holder's mapping of a tail truncated under it by hand would fault).
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
  uint64_t ticket_no_ = 0;
  uint32_t* wake_ = nullptr;  // the queue's wake-up words, mapped; null: none
  bool held_ = false;
  std::string why_not_;
};

}  // namespace ipam
