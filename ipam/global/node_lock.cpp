#include "ipam/global/node_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace ipam {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text() { return std::strerror(errno); }

long ms_left(Clock::time_point deadline) {
  return std::max<long>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

// The tickets in `queue` older than `mine`, newest first.
std::vector<uint64_t> older_tickets(const std::string& queue, uint64_t mine) {
  std::vector<uint64_t> out;
  DIR* d = opendir(queue.c_str());
  if (!d) return out;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  while (dirent* e = readdir(d)) {
    uint64_t t = 0;
    const char* end = e->d_name + std::strlen(e->d_name);
    auto [p, ec] = std::from_chars(e->d_name, end, t);
    if (ec == std::errc() && p == end && t < mine) out.push_back(t);
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

// Waits until the waiter of `path` is gone (its file unlinked or no longer locked: it
// released, gave up or died), at most until `deadline`. Removes a file whose waiter died.
bool wait_for(const std::string& path, Clock::time_point deadline) {
  cni::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return true;  // released (or cleaned up) already
  cni::UniqueFd watch;
  for (;;) {
    if (flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
      struct stat held {};
      struct stat now {};
      // Still linked: its waiter died or gave up without unlinking. Tidy up (the name is ours
      // to remove only if it still names what we locked).
      if (fstat(fd.get(), &held) == 0 && held.st_nlink > 0 && stat(path.c_str(), &now) == 0 &&
          now.st_ino == held.st_ino && now.st_dev == held.st_dev) {
        unlink(path.c_str());
      }
      return true;
    }
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return true;  // cannot tell: do not wait on it
    if (!watch) {
      // Its owner opened it for writing: IN_CLOSE_WRITE comes when it closes it (release,
      // giving up, death), IN_ATTRIB when it unlinks it. Set up, then look again (it may have
      // gone between the look and the watch).
      watch.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
      if (!watch || inotify_add_watch(watch.get(), path.c_str(),
                                      IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF) < 0) {
        if (errno == ENOENT) return true;
        watch.reset();
        // No inotify: look again in a millisecond.
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      continue;
    }
    long left = ms_left(deadline);
    if (left <= 0) return false;
    pollfd p{watch.get(), POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long>(left, 1000)));
    if (n > 0) {
      char buf[4096];
      while (read(watch.get(), buf, sizeof buf) > 0) {
      }
    }
  }
}

}  // namespace

NodeLock NodeLock::acquire(const std::string& dir, const std::string& node,
                           std::chrono::milliseconds timeout) {
  NodeLock l;
  if (dir.empty()) return l;
  auto deadline = Clock::now() + timeout;
  // mkdir -p; an existing directory is fine.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') mkdir(dir.substr(0, pos).c_str(), 0700);
  }
  std::string queue = dir + "/" + node + ".queue";
  if (mkdir(queue.c_str(), 0700) != 0 && errno != EEXIST) {
    l.why_not_ = "cannot create \"" + queue + "\": " + errno_text();
    return l;
  }

  // 1. A ticket: the tail's lock is held for a read and a write, so polling it is fine.
  std::string tail_path = queue + "/tail";
  cni::UniqueFd tail(open(tail_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!tail) {
    l.why_not_ = "cannot open \"" + tail_path + "\": " + errno_text();
    return l;
  }
  while (flock(tail.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      l.why_not_ = "cannot lock \"" + tail_path + "\": " + errno_text();
      return l;
    }
    if (Clock::now() >= deadline) {
      l.why_not_ =
          "\"" + tail_path + "\" still locked after " + std::to_string(timeout.count()) + " ms";
      return l;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  uint64_t ticket = 0;
  if (pread(tail.get(), &ticket, sizeof ticket, 0) != sizeof ticket) ticket = 0;
  for (;;) {
    ++ticket;
    l.ticket_path_ = queue + "/" + std::to_string(ticket);
    l.ticket_.reset(open(l.ticket_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (l.ticket_) break;
    if (errno != EEXIST) {  // EEXIST: a file left from before the tail was lost: skip it
      l.why_not_ = "cannot create \"" + l.ticket_path_ + "\": " + errno_text();
      return l;
    }
  }
  // A new file: nobody else has it, so this does not wait.
  if (flock(l.ticket_.get(), LOCK_EX | LOCK_NB) != 0 ||
      pwrite(tail.get(), &ticket, sizeof ticket, 0) != sizeof ticket) {
    l.why_not_ = "cannot take a ticket in \"" + queue + "\": " + errno_text();
    l.release();
    return l;
  }
  tail.reset();
  l.queue_ = queue;

  // 2. Our turn once every older waiter is gone: newest first (it goes last of them, so the
  //    others are usually gone by then).
  for (uint64_t older : older_tickets(queue, ticket)) {
    if (!wait_for(queue + "/" + std::to_string(older), deadline)) {
      l.why_not_ = "not our turn in \"" + queue + "\" after " + std::to_string(timeout.count()) +
                   " ms (ticket " + std::to_string(ticket) + " waits for " + std::to_string(older) +
                   ")";
      l.release();  // unlinked: the waiters behind us do not wait for us
      return l;
    }
  }
  l.held_ = true;
  return l;
}

void NodeLock::release() {
  if (ticket_) {
    // Unlinked before it is unlocked: a waiter that then gets its lock sees that we are done.
    unlink(ticket_path_.c_str());
    ticket_.reset();
  }
  held_ = false;
}

NodeLock::~NodeLock() { release(); }

NodeLock::NodeLock(NodeLock&& other) noexcept
    : queue_(std::move(other.queue_)),
      ticket_path_(std::move(other.ticket_path_)),
      ticket_(std::move(other.ticket_)),
      held_(std::exchange(other.held_, false)),
      why_not_(std::move(other.why_not_)) {}

NodeLock& NodeLock::operator=(NodeLock&& other) noexcept {
  if (this != &other) {
    release();
    queue_ = std::move(other.queue_);
    ticket_path_ = std::move(other.ticket_path_);
    ticket_ = std::move(other.ticket_);
    held_ = std::exchange(other.held_, false);
    why_not_ = std::move(other.why_not_);
  }
  return *this;
}

}  // namespace ipam
