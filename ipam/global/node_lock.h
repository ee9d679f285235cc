#pragma once

#include <chrono>
#include <string>

#include "libcni/core/fd.h"

namespace ipam {

// Single flight of one node's allocations, best effort (Calico's /var/run/calico/ipam.lock):
// concurrent ADDs and DELs on a node would otherwise compete for the same block and lose
// compare-and-swaps to each other, each loss costing a round of reads and a backoff. The
// lock only spares that work; correctness never depends on it (every write is still a
// compare-and-swap), so when the directory cannot be used or the wait times out the
// operation goes on unlocked.
class NodeLock {
 public:
  NodeLock() = default;
  // Locks <dir>/<node>.lock (flock, exclusive), creating the directory (0700) and the file
  // as needed; waits at most `timeout`. An empty `dir` takes no lock.
  static NodeLock acquire(const std::string& dir, const std::string& node,
                          std::chrono::milliseconds timeout);
  bool held() const { return static_cast<bool>(fd_); }
  // Why it is not held ("" when it is, or when no lock was asked for).
  const std::string& why_not() const { return why_not_; }

 private:
  cni::UniqueFd fd_;
  std::string why_not_;
};

}  // namespace ipam
