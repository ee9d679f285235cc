#include "libcni/process/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>

#include "libcni/core/error.h"
#include "libcni/core/state_file.h"

namespace cni {

FileLock FileLock::acquire(const std::string& path, std::chrono::milliseconds timeout) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash));
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) {
    throw std::system_error(errno, std::system_category(), "failed to open \"" + path + "\"");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      throw std::system_error(errno, std::system_category(), "failed to lock \"" + path + "\"");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(kErrTryAgainLater, "\"" + path + "\" is still locked after " +
                                         std::to_string(timeout.count()) +
                                         " ms: another operation on it is running");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
  return FileLock(std::move(fd));
}

}  // namespace cni
