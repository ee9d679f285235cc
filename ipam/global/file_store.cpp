#include "ipam/global/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "ipam/global/file_watch.h"
#include "libcni/core/error.h"
#include "libcni/core/hash.h"

namespace ipam {

using cni::UniqueFd;

namespace {

constexpr char kLocks[] = ".locks";
constexpr char kTmp[] = ".tmp";

std::system_error os_error(const std::string& what, const std::string& path, int err = errno) {
  return std::system_error(err, std::generic_category(), "failed to " + what + " \"" + path + "\"");
}

// "a/b/c" -> "a/b"; "a" -> "".
std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

void fsync_dir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw os_error("open directory", dir);
  if (fsync(fd.get()) != 0) throw os_error("fsync directory", dir);
}

// mkdir -p of `rel` below `base` (which exists; "/" for an absolute path); with `durable`,
// each directory made is fsync()ed into its parent, so that a file renamed into it survives a
// power cut.
void make_dirs(const std::string& base, const std::string& rel, bool durable) {
  std::string path = base;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) slash = rel.size();
    std::string parent = path;
    if (path.back() != '/') path += '/';
    path += rel.substr(pos, slash - pos);
    pos = slash + 1;
    if (mkdir(path.c_str(), 0700) == 0) {
      if (durable) fsync_dir(parent);
    } else if (errno != EEXIST) {
      throw os_error("create directory", path);
    }
  }
}

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// A tag for this store's temporary files, unlike any other store instance's: from getrandom(),
// not std::random_device, which asks the CPU for RDRAND first (a cpuid, which traps to the
// hypervisor in a VM: about 1 % of an exec's CPU, docs/benchmarks.md).
uint64_t random_tag() {
  uint64_t tag = 0;
  if (getrandom(&tag, sizeof tag, GRND_NONBLOCK) != sizeof tag) {
    tag = static_cast<uint64_t>(now_ns()) ^ (static_cast<uint64_t>(getpid()) << 32);
  }
  return tag;
}

std::string read_all(int fd, const std::string& path) {
  std::string data;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw os_error("read", path);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

void write_all(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw os_error("write", path);
    off += static_cast<size_t>(n);
  }
}

// Calls fn(relative path) for every regular file below `dir` (relative to `dir`).
template <class Fn>
void walk(const std::string& dir, const std::string& rel, Fn& fn) {
  DIR* d = opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) return;  // removed meanwhile, or never there
    throw os_error("open directory", dir);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (rel.empty() && (name == kLocks || name == kTmp)) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      is_dir = S_ISDIR(st.st_mode);
      if (!is_dir && !S_ISREG(st.st_mode)) continue;
    } else if (!is_dir && e->d_type != DT_REG) {
      continue;
    }
    entries.emplace_back(std::move(name), is_dir);
  }
  for (const auto& [name, is_dir] : entries) {
    std::string sub = rel.empty() ? name : rel + "/" + name;
    if (is_dir) {
      walk(dir + "/" + name, sub, fn);
    } else {
      fn(sub);
    }
  }
}

// Whether `dir` is on a file system that only this host's kernel reads and writes (see
// file_store.h, "Durability"). Unknown ones (NFS, SMB, Ceph, GFS2, OCFS2, FUSE, ...) are not.
bool on_local_file_system(const std::string& dir) {
  struct statfs st {};
  if (statfs(dir.c_str(), &st) != 0) return false;
  switch (static_cast<unsigned long>(st.f_type)) {
    case EXT4_SUPER_MAGIC:  // also ext2 and ext3
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case F2FS_SUPER_MAGIC:
    case TMPFS_MAGIC:
    case RAMFS_MAGIC:
    case OVERLAYFS_SUPER_MAGIC:
      return true;
    default:
      return false;
  }
}

}  // namespace

void validate_store_key(const std::string& key) {
  if (key.empty() || key.size() > 4000) throw std::invalid_argument("invalid store key \"\"");
  size_t pos = 0;
  while (pos <= key.size()) {
    size_t slash = key.find('/', pos);
    if (slash == std::string::npos) slash = key.size();
    std::string_view part(key.data() + pos, slash - pos);
    if (part.empty() || part == "." || part == ".." || part.size() > 255 ||
        part.find('\0') != std::string_view::npos) {
      throw std::invalid_argument("invalid store key \"" + key + "\"");
    }
    pos = slash + 1;
  }
}

FileStore::FileStore(std::string root, std::chrono::milliseconds lock_timeout)
    : root_(std::move(root)), lock_timeout_(lock_timeout), tmp_tag_(random_tag()) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  if (root_.empty()) throw std::invalid_argument("file store: empty path");
  if (mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) {
    if (errno != ENOENT) throw os_error("create directory", root_);
    // Missing parents: create them (an absolute path always has "/" to start from).
    bool absolute = root_[0] == '/';
    make_dirs(absolute ? "/" : ".", absolute ? root_.substr(1) : root_, true);
  }
  sync_writes_ = !on_local_file_system(root_);
  sweep_tmp();
}

std::string FileStore::path_of(const std::string& key) const {
  validate_store_key(key);
  if (key.rfind(std::string(kLocks), 0) == 0 || key.rfind(std::string(kTmp), 0) == 0) {
    throw std::invalid_argument("invalid store key \"" + key + "\" (reserved)");
  }
  return root_ + "/" + key;
}

void FileStore::sweep_tmp() const {
  std::string dir = root_ + "/" + kTmp;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  // A writer holds its temporary file locked from before it can be seen as complete until
  // after it is renamed away (create_tmp), so a file whose lock we get belongs to a writer
  // that died: remove it, however young. A slow writer's file is never taken: age says
  // nothing about whether its writer is alive (a writer stopped for a minute is not dead).
  for (const auto& name : names) {
    UniqueFd fd(openat(dirfd(d), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd || flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    struct stat held {};
    struct stat now {};
    // Unlink only what we locked: the name may have been renamed away (and never reused).
    if (fstat(fd.get(), &held) == 0 &&
        fstatat(dirfd(d), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
        held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
      unlinkat(dirfd(d), name.c_str(), 0);  // best effort
    }
  }
}

FileStore::TmpFile FileStore::create_tmp(const std::string& tag) {
  for (;;) {
    // Unique among processes (pid), store instances (a random tag) and writes of one instance.
    std::string path = root_ + "/" + kTmp + "/" + tag + std::to_string(getpid()) + "-" +
                       std::to_string(tmp_tag_) + "-" + std::to_string(tmp_counter_++);
    UniqueFd fd;
    for (int i = 0; i < 2 && !fd; ++i) {
      fd.reset(open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!fd && errno == ENOENT && i == 0) make_dirs(root_, kTmp, true);
    }
    if (!fd) throw os_error("create", path);
    // A sweep may lock and remove the file between its creation and this lock: then it is no
    // longer linked and we start over with a new name. Once locked and still linked, no sweep
    // removes it (sweep_tmp).
    while (flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) throw os_error("lock", path);
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw os_error("stat", path);
    if (st.st_nlink > 0) return TmpFile{std::move(path), std::move(fd)};
  }
}

std::string FileStore::lock_file(const std::string& key) const {
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t stripe = cni::stable_hash64({key}) % kLockStripes;
  return root_ + "/" + kLocks + "/" + kHex[stripe >> 4] + kHex[stripe & 0xf];
}

UniqueFd FileStore::lock(const std::string& key) {
  const std::string path = lock_file(key);
  auto deadline = std::chrono::steady_clock::now() + lock_timeout_;
  auto pause = std::chrono::microseconds(100);
  UniqueFd fd;
  for (;;) {
    fd.reset(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd) break;
    if (errno != ENOENT) throw os_error("open lock", path);
    // .locks/ is missing (the store's first write): make it, but not forever (a .locks that
    // cannot hold the file, such as a dangling symbolic link, would keep us here): past the
    // deadline, the error.
    if (std::chrono::steady_clock::now() >= deadline) throw os_error("open lock", path, ENOENT);
    make_dirs(root_, kLocks, false);
  }
  for (;;) {
    if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return fd;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) throw os_error("lock", path);
    if (std::chrono::steady_clock::now() >= deadline) {
      throw cni::Error(cni::kErrTryAgainLater,
                       "timed out after " + std::to_string(lock_timeout_.count()) +
                           " ms waiting for the lock of " + key + " in " + describe());
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(5000));
  }
}

std::optional<KvEntry> FileStore::read(const std::string& key, const std::string& path) const {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw os_error("open", path);
  }
  std::string data = read_all(fd.get(), path);
  // Never written by us (a record starts with its revision): a write whose data a crash lost
  // before it reached the disk, the key's earlier version with it (file_store.h, "Durability").
  if (data.empty()) return std::nullopt;
  size_t nl = data.find('\n');
  int64_t rev = 0;
  auto [ptr, ec] =
      std::from_chars(data.data(), data.data() + (nl == std::string::npos ? 0 : nl), rev);
  if (nl == std::string::npos || ec != std::errc() || ptr != data.data() + nl || rev <= 0) {
    throw std::runtime_error(describe() + ": malformed record \"" + path + "\"");
  }
  return KvEntry{key, data.substr(nl + 1), rev};
}

std::optional<KvEntry> FileStore::get(const std::string& key) { return read(key, path_of(key)); }

std::vector<KvEntry> FileStore::list(const std::string& prefix, bool keys_only) {
  if (!prefix.empty()) {
    if (prefix.back() != '/') {
      throw std::invalid_argument("file store: list prefix \"" + prefix + "\" must end with '/'");
    }
    validate_store_key(prefix.substr(0, prefix.size() - 1));
  }
  std::vector<std::string> keys;
  auto collect = [&](const std::string& rel) { keys.push_back(prefix + rel); };
  std::string dir = prefix.empty() ? root_ : root_ + "/" + prefix.substr(0, prefix.size() - 1);
  walk(dir, "", collect);
  std::sort(keys.begin(), keys.end());
  std::vector<KvEntry> out;
  for (const auto& key : keys) {
    auto e = read(key, root_ + "/" + key);
    if (!e) continue;  // deleted meanwhile
    if (keys_only) e->value.clear();
    out.push_back(std::move(*e));
  }
  return out;
}

std::optional<int64_t> FileStore::put_if(const std::string& key, const std::string& value,
                                         int64_t expected) {
  std::string path = path_of(key);
  UniqueFd held = lock(key);
  auto current = read(key, path);
  if ((current ? current->revision : 0) != expected) return std::nullopt;
  int64_t rev = std::max(current ? current->revision + 1 : 1, now_ns());

  std::string data = std::to_string(rev) + "\n" + value;
  // The temporary file stays locked until it has been renamed (sweep_tmp leaves it alone).
  for (int vanished = 0;; ++vanished) {
    TmpFile tmp = create_tmp("");
    try {
      write_all(tmp.fd.get(), data, tmp.path);
      if (sync_writes_ && fsync(tmp.fd.get()) != 0) throw os_error("fsync", tmp.path);
      if (rename_into(tmp, key, path, current.has_value())) break;
    } catch (...) {
      unlink(tmp.path.c_str());
      throw;
    }
    // Someone removed the temporary file (not a sweep: it was locked) before its rename:
    // nothing was written, so write it again.
    if (vanished == 2) {
      throw std::system_error(ENOENT, std::generic_category(),
                              "failed to rename \"" + tmp.path + "\" into \"" + path +
                                  "\": the temporary file was removed three times before its "
                                  "rename (something other than the store deletes in " +
                                  root_ + "/" + kTmp + ")");
    }
  }
  // No fsync of the directory (see file_store.h, "Durability").
  return rev;
}

bool FileStore::rename_into(const TmpFile& tmp, const std::string& key, const std::string& path,
                            bool replace) {
  // Over an existing version on a local file system: exchanged with it (one atomic step for
  // readers too), then its old inode, left at the temporary name, unlinked. ext4 flushes a
  // file renamed over an existing one to the disk inside the rename (auto_da_alloc: 0.4-0.9
  // ms here, docs/benchmarks.md), an exchange it does not; the durability argument never
  // counted on that flush (file_store.h). Killed between the two steps, the old version stays
  // in .tmp/, unlocked: the next sweep removes it. A file system without exchanges (EINVAL)
  // gets the rename.
  if (replace && !sync_writes_ && exchange_works_) {
    if (renameat2(AT_FDCWD, tmp.path.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
      unlink(tmp.path.c_str());  // best effort: a sweep may have removed it first
      return true;
    }
    if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) exchange_works_ = false;
    // ENOENT (either side missing) and any other failure: the rename below says which.
  }
  for (int attempt = 0;; ++attempt) {
    if (rename(tmp.path.c_str(), path.c_str()) == 0) return true;
    int err = errno;
    // ENOENT names either side: the temporary file gone (no longer linked), or the key's
    // directory gone (a concurrent delete of a sibling removed it after we made it: make it
    // again).
    struct stat st {};
    if (err == ENOENT && fstat(tmp.fd.get(), &st) == 0 && st.st_nlink == 0) return false;
    if (err != ENOENT || attempt == 10) throw os_error("rename into", path, err);
    make_dirs(root_, parent_of(key), false);  // no fsync: see file_store.h, "Durability"
  }
}

bool FileStore::erase_if(const std::string& key, int64_t expected) {
  std::string path = path_of(key);
  UniqueFd held = lock(key);
  auto current = read(key, path);
  if (!current || current->revision != expected) return false;
  if (unlink(path.c_str()) != 0) throw os_error("remove", path);
  // Directories left empty go too (handles/<network>/<containerID>/ would pile up
  // otherwise). Best effort: a writer that loses its directory to this makes it again.
  for (std::string dir = parent_of(key); dir.find('/') != std::string::npos; dir = parent_of(dir)) {
    if (rmdir((root_ + "/" + dir).c_str()) != 0) break;
  }
  return true;
}

std::unique_ptr<KvWatch> FileStore::watch(const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (p.empty() || p.back() != '/') {
      throw std::invalid_argument("file store: watch prefix \"" + p + "\" must end with '/'");
    }
    path_of(p.substr(0, p.size() - 1));  // a valid key path, not .locks/ or .tmp/
  }
  return std::make_unique<FileWatch>(root_, prefixes);
}

void FileStore::ping() {
  struct stat st {};
  if (stat(root_.c_str(), &st) != 0) throw os_error("stat", root_);
  TmpFile probe = create_tmp("ping-");
  bool ok = ::write(probe.fd.get(), "x", 1) == 1;
  int err = errno;
  unlink(probe.path.c_str());
  if (!ok) throw os_error("write", probe.path, err);
}

}  // namespace ipam
