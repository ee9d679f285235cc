#include "ipam/global/node_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace ipam {

NodeLock NodeLock::acquire(const std::string& dir, const std::string& node,
                           std::chrono::milliseconds timeout) {
  NodeLock l;
  if (dir.empty()) return l;
  // mkdir -p; an existing directory is fine.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') mkdir(dir.substr(0, pos).c_str(), 0700);
  }
  std::string path = dir + "/" + node + ".lock";
  cni::UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) {
    l.why_not_ = "cannot open \"" + path + "\": " + std::strerror(errno);
    return l;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      l.why_not_ = "cannot lock \"" + path + "\": " + std::strerror(errno);
      return l;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      l.why_not_ = "\"" + path + "\" still locked after " + std::to_string(timeout.count()) + " ms";
      return l;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(1000));
  }
  l.fd_ = std::move(fd);
  return l;
}

}  // namespace ipam
