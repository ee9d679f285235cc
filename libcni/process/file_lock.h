#pragma once

#include <chrono>
#include <string>

#include "libcni/core/fd.h"

namespace cni {

// An exclusive flock on a file, held until the object dies (or the process: the descriptor
// is close-on-exec, so no delegate inherits it). For state one plugin invocation at a time
// may change, e.g. sriov's per-VF lock. A killed holder releases it with its last descriptor.
class FileLock {
 public:
  FileLock() = default;
  // Locks `path`, creating it (0600) and its directory (0700), waiting at most `timeout`.
  // Throws Error{kErrTryAgainLater} `"<path>" is still locked after 60000 ms: ...` on timeout,
  // std::system_error naming the path when it cannot be opened or locked.
  static FileLock acquire(const std::string& path, std::chrono::milliseconds timeout);
  bool held() const { return static_cast<bool>(fd_); }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace cni
