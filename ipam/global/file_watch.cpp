#include "ipam/global/file_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace ipam {

namespace {

constexpr uint32_t kMask = IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_CLOSE_WRITE |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::system_error os_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

bool is_within(const std::string& rel, const std::string& base) {
  return base.empty() || rel == base || rel.rfind(base + "/", 0) == 0;
}

}  // namespace

FileWatch::FileWatch(std::string root, std::vector<std::string> prefixes)
    : root_(std::move(root)),
      inotify_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)),
      interrupt_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!inotify_) throw os_error("inotify_init1");
  if (!interrupt_) throw os_error("eventfd");
  for (auto& p : prefixes) {
    if (p.empty() || p.back() != '/') {
      throw std::invalid_argument("file store watch: prefix \"" + p + "\" must end with '/'");
    }
    p.pop_back();
    prefixes_.push_back(std::move(p));
  }
  add_all();
}

bool FileWatch::under_prefix(const std::string& rel) const {
  for (const auto& p : prefixes_) {
    if (is_within(rel, p)) return true;
  }
  return false;
}

bool FileWatch::above_prefix(const std::string& rel) const {
  for (const auto& p : prefixes_) {
    if (rel.empty() || p.rfind(rel + "/", 0) == 0) return true;
  }
  return false;
}

bool FileWatch::add_tree(const std::string& rel) {
  std::string path = rel.empty() ? root_ : root_ + "/" + rel;
  int wd = inotify_add_watch(inotify_.get(), path.c_str(), kMask);
  if (wd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;  // gone meanwhile
    throw os_error("failed to watch \"" + path + "\"");
  }
  dirs_[wd] = rel;
  // Then look inside: what landed before the watch is a change, and subdirectories need
  // watches of their own (inotify is not recursive).
  bool found = false;
  DIR* d = opendir(path.c_str());
  if (!d) return false;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  std::vector<std::string> subdirs;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || (rel.empty() && name[0] == '.')) continue;  // .locks, .tmp
    std::string sub = rel.empty() ? name : rel + "/" + name;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) {
      if (under_prefix(sub) || above_prefix(sub)) subdirs.push_back(sub);
    } else if (under_prefix(sub)) {
      found = true;
    }
  }
  for (const auto& sub : subdirs) found = add_tree(sub) || found;
  return found;
}

bool FileWatch::add_all() { return add_tree(""); }

void FileWatch::interrupt() {
  uint64_t one = 1;
  ssize_t ignored = write(interrupt_.get(), &one, sizeof one);  // async-signal-safe
  (void)ignored;
}

KvWatch::Event FileWatch::wait(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {interrupt_.get(), POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int n = poll(fds, 2, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n < 0 && errno != EINTR) throw os_error("poll");
    if (fds[1].revents) {
      uint64_t v = 0;
      if (read(interrupt_.get(), &v, sizeof v) == sizeof v) return Event::kInterrupted;
    }
    bool changed = false;
    bool resync = false;
    alignas(inotify_event) char buf[16384];
    for (;;) {
      ssize_t got = read(inotify_.get(), buf, sizeof buf);
      if (got <= 0) break;
      for (char* p = buf; p < buf + got;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
          resync = true;
          continue;
        }
        auto dir = dirs_.find(ev->wd);
        if (ev->mask & IN_IGNORED) {
          if (dir != dirs_.end()) dirs_.erase(dir);
          continue;
        }
        if (dir == dirs_.end() || ev->len == 0) continue;  // the directory itself
        std::string name = ev->name;
        if (dir->second.empty() && name[0] == '.') continue;  // .locks, .tmp
        std::string rel = dir->second.empty() ? name : dir->second + "/" + name;
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
          // Keys may have landed in it before its watch: add_tree finds them.
          if ((under_prefix(rel) || above_prefix(rel)) && add_tree(rel)) changed = true;
          continue;
        }
        if (!(ev->mask & IN_ISDIR) && under_prefix(rel) &&
            (ev->mask & (IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE))) {
          changed = true;
        }
      }
    }
    if (resync) {
      for (const auto& [wd, rel] : dirs_) inotify_rm_watch(inotify_.get(), wd);
      dirs_.clear();
      add_all();
      return Event::kResync;
    }
    if (changed) return Event::kChanged;
    if (Clock::now() >= deadline) return Event::kTimeout;
  }
}

}  // namespace ipam
