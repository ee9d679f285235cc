#include "overlay/node_guard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace overlay {

namespace {

cni::UniqueFd open_lock(const std::string& path, std::string* why) {
  cni::UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) *why = "cannot open \"" + path + "\": " + std::strerror(errno);
  return fd;
}

// flock with a deadline: true when taken.
bool lock(int fd, int op, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(100);
  for (;;) {
    if (flock(fd, op | LOCK_NB) == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

}  // namespace

NodeGuard NodeGuard::enter(const std::string& dir, const std::string& device,
                           std::chrono::milliseconds timeout) {
  NodeGuard g;
  g.dir_ = dir;
  g.device_ = device;
  if (dir.empty()) return g;
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') mkdir(dir.substr(0, pos).c_str(), 0700);
  }
  cni::UniqueFd fd = open_lock(dir + "/" + device + ".users", &g.why_not_);
  if (!fd) return g;
  if (!lock(fd.get(), LOCK_SH, timeout)) {
    g.why_not_ = "\"" + dir + "/" + device + ".users\" stayed locked";
    return g;
  }
  g.users_ = std::move(fd);
  return g;
}

NodeGuard::Setup NodeGuard::setup(std::chrono::milliseconds timeout) {
  if (!users_) return Setup();
  std::string why;
  cni::UniqueFd fd = open_lock(dir_ + "/" + device_ + ".setup", &why);
  if (!fd || !lock(fd.get(), LOCK_EX, timeout)) return Setup();
  return Setup(std::move(fd));
}

bool NodeGuard::last_user() {
  if (!users_) return false;
  // Converting a shared lock to an exclusive one (flock(2)) is what we want: it succeeds only
  // when no other descriptor holds the file locked.
  return flock(users_.get(), LOCK_EX | LOCK_NB) == 0;
}

}  // namespace overlay
