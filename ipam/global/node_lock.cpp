#include "ipam/global/node_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
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

// The queue's wake-up words: kWakeSlots 32-bit counters in the tail file after its first
// page, mapped shared by every waiter and holder. Releasing ticket t bumps word t % kWakeSlots
// and wakes its futex waiters (the waiter of the next ticket sleeps on it).
constexpr size_t kWakeSlots = 1024;
size_t wake_offset() { return std::max<size_t>(4096, static_cast<size_t>(sysconf(_SC_PAGESIZE))); }
constexpr size_t kWakeBytes = kWakeSlots * sizeof(uint32_t);
// A waiter looks again at least this often: a release wakes it at once, a death does not
// (the kernel drops the dead one's flock and tells nobody), so this bounds what a killed
// holder or waiter costs the waiters behind it.
constexpr auto kRecheck = std::chrono::milliseconds(10);

std::atomic_ref<uint32_t> wake_word(uint32_t* words, uint64_t ticket) {
  return std::atomic_ref<uint32_t>(words[ticket % kWakeSlots]);
}

// Sleeps until the word is no longer `seen` (a release bumped it), at most `d`.
void futex_wait(uint32_t* word, uint32_t seen, std::chrono::milliseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>(d.count() % 1000) * 1000000};
  syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, nullptr, 0);  // EAGAIN: bumped already
}

void futex_wake_all(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, std::numeric_limits<int>::max(), nullptr, nullptr, 0);
}

// Maps the wake-up words of the tail `tail_path` (growing it to hold them: the caller holds
// the tail's flock, on `tail`); null when the file system cannot (then waiters look every
// millisecond). The mapping is made through an open file of its own: a mapping keeps the
// open file it was made through, and with it that file's flock, until it is unmapped.
uint32_t* map_wake_words(int tail, const std::string& tail_path) {
  const size_t off = wake_offset();
  struct stat st {};
  if (fstat(tail, &st) != 0) return nullptr;
  if (static_cast<size_t>(st.st_size) < off + kWakeBytes &&
      ftruncate(tail, static_cast<off_t>(off + kWakeBytes)) != 0) {
    return nullptr;
  }
  cni::UniqueFd fd(open(tail_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return nullptr;
  void* p = mmap(nullptr, kWakeBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(),
                 static_cast<off_t>(off));
  return p == MAP_FAILED ? nullptr : static_cast<uint32_t*>(p);
}

// Waits until the waiter of ticket `older` (its file `path`) is gone (its file unlinked or no
// longer locked: it released, gave up or died), at most until `deadline`. Removes a file
// whose waiter died. Between looks it sleeps on the ticket's wake-up word (`words`; null:
// sleeps a millisecond), at most kRecheck.
bool wait_for(const std::string& path, uint64_t older, uint32_t* words,
              Clock::time_point deadline) {
  cni::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return true;  // released (or cleaned up) already
  for (;;) {
    // Read before the look: a release after the look changes it, so the sleep below does not
    // miss that release's wake-up.
    uint32_t seen = words ? wake_word(words, older).load(std::memory_order_acquire) : 0;
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
    long left = ms_left(deadline);
    if (left <= 0) return false;
    auto nap = std::min(std::chrono::milliseconds(left), kRecheck);
    if (words) {
      futex_wait(&words[older % kWakeSlots], seen, nap);
    } else {
      std::this_thread::sleep_for(std::min(nap, std::chrono::milliseconds(1)));
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
  l.ticket_no_ = ticket;
  l.wake_ = map_wake_words(tail.get(), tail_path);
  tail.reset();
  l.queue_ = queue;

  // 2. Our turn once every older waiter is gone: newest first (it goes last of them, so the
  //    others are usually gone by then).
  for (uint64_t older : older_tickets(queue, ticket)) {
    if (!wait_for(queue + "/" + std::to_string(older), older, l.wake_, deadline)) {
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
    // Closed, so unlocked: the waiter behind us that wakes finds it so.
    if (wake_) {
      wake_word(wake_, ticket_no_).fetch_add(1, std::memory_order_release);
      futex_wake_all(&wake_[ticket_no_ % kWakeSlots]);
    }
  }
  if (wake_) munmap(wake_, kWakeBytes);
  wake_ = nullptr;
  held_ = false;
}

NodeLock::~NodeLock() { release(); }

NodeLock::NodeLock(NodeLock&& other) noexcept
    : queue_(std::move(other.queue_)),
      ticket_path_(std::move(other.ticket_path_)),
      ticket_(std::move(other.ticket_)),
      ticket_no_(other.ticket_no_),
      wake_(std::exchange(other.wake_, nullptr)),
      held_(std::exchange(other.held_, false)),
      why_not_(std::move(other.why_not_)) {}

NodeLock& NodeLock::operator=(NodeLock&& other) noexcept {
  if (this != &other) {
    release();
    queue_ = std::move(other.queue_);
    ticket_path_ = std::move(other.ticket_path_);
    ticket_ = std::move(other.ticket_);
    ticket_no_ = other.ticket_no_;
    wake_ = std::exchange(other.wake_, nullptr);
    held_ = std::exchange(other.held_, false);
    why_not_ = std::move(other.why_not_);
  }
  return *this;
}

}  // namespace ipam
