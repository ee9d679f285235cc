#include "ipam/host_local/disk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/core/hash.h"
#include "libcni/protocol/netconf.h"

namespace ipam {

namespace {

using cni::IpAddress;
using cni::UniqueFd;

constexpr char kIndexDir[] = ".strait";
constexpr char kStampFile[] = "stamp";
constexpr char kLastReservedPrefix[] = "last_reserved_ip.";
constexpr char kIndexMagic[] = "strait host-local index 1";
constexpr char kStampMagic[] = "strait host-local stamp 2";
constexpr char kLineBreak[] = "\r\n";  // upstream's separator of ID and ifname
constexpr size_t kMaxSmallFile = 64 * 1024;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Opens a directory (relative to `at`) for readdir; nullptr with errno set on failure.
DirPtr open_dir(int at, const char* name) {
  int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  DIR* d = fdopendir(fd);
  if (!d) {
    int err = errno;
    close(fd);
    errno = err;
  }
  return DirPtr(d);
}

bool is_regular(int dirfd, const dirent* e) {
  if (e->d_type == DT_REG) return true;
  if (e->d_type != DT_UNKNOWN) return false;
  struct stat st {};
  return fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

// The content of a small regular file, or nullopt with errno set (ENOENT when absent).
std::optional<std::string> read_small(int dirfd, const std::string& name) {
  UniqueFd fd(openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return std::nullopt;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return std::nullopt;
  }
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxSmallFile) {
      errno = EFBIG;
      return std::nullopt;
    }
  }
  return data;
}

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(errno, "failed to write " + what);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Creates dirfd/name (0600) holding `data`, or overwrites it in place: the old content is
// overwritten from offset 0 and the file cut only when it was longer. Not O_TRUNC: on ext4,
// truncating a non-empty file takes the orphan list and flushes the file on close
// (auto_da_alloc), which blocked 2.5-3.4 ms of some ADDs here (docs/benchmarks.md); the
// files rewritten this way (last_reserved_ip.N, the index stamp) keep nearly the same length.
// A crash between the write and the cut leaves trailing bytes: upstream then reads no
// last_reserved_ip (it only loses round-robin once), and a stamp that does not match
// rebuilds the index.
void write_file(int dirfd, const std::string& name, std::string_view data,
                const std::string& what) {
  UniqueFd fd(openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw_errno(errno, "failed to open " + what);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw_errno(errno, "failed to stat " + what);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd.get(), data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(errno, "failed to write " + what);
    done += static_cast<size_t>(n);
  }
  if (st.st_size > static_cast<off_t>(data.size()) &&
      ftruncate(fd.get(), static_cast<off_t>(data.size())) != 0) {
    throw_errno(errno, "failed to write " + what);
  }
  if (close(fd.release()) != 0) throw_errno(errno, "failed to write " + what);
}

std::string_view trim(std::string_view s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// Upstream compares the trimmed content with "<id>\r\n<ifname>", then with "<id>" alone.
LeaseOwner parse_lease(std::string_view content) {
  content = trim(content);
  size_t br = content.find(kLineBreak);
  if (br == std::string_view::npos) return {std::string(content), ""};
  return {std::string(content.substr(0, br)), std::string(content.substr(br + 2))};
}

// An owner we write a lease for must round-trip through that format.
void check_owner(const LeaseOwner& o) {
  if (!cni::is_valid_name(o.container_id)) {
    throw cni::Error(cni::kErrInvalidEnv, "invalid container ID \"" + o.container_id +
                                              "\": must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
  bool bad = o.ifname.empty() || o.ifname.size() > 15 || o.ifname == "." || o.ifname == "..";
  for (char c : o.ifname) {
    auto u = static_cast<unsigned char>(c);
    bad = bad || u <= 0x20 || u == 0x7f || c == '/' || c == ':';
  }
  if (bad) throw cni::Error(cni::kErrInvalidEnv, "invalid interface name \"" + o.ifname + "\"");
}

std::string pct_encode(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '.' || c == '-') {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", u);
      out += buf;
    }
  }
  return out;
}

std::optional<std::string> pct_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned v = 0;
    for (size_t k = 1; k <= 2; ++k) {
      if (i + k >= s.size()) return std::nullopt;
      char c = s[i + k];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
    }
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::string format_entry(const LeaseOwner& o, const std::vector<IpAddress>& ips) {
  std::string s = std::string(kIndexMagic) + "\nid " + pct_encode(o.container_id) + "\nif " +
                  pct_encode(o.ifname) + "\n";
  for (const auto& ip : ips) s += "ip " + ip.str() + "\n";
  return s;
}

struct ParsedEntry {
  LeaseOwner owner;
  std::vector<IpAddress> ips;
};

std::optional<ParsedEntry> parse_entry(std::string_view text) {
  ParsedEntry e;
  int line_no = 0;
  bool have_id = false;
  bool have_if = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;  // torn write
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (line_no++ == 0) {
      if (line != kIndexMagic) return std::nullopt;
      continue;
    }
    if (line.size() < 3 || line[2] != ' ') return std::nullopt;
    std::string_view tag = line.substr(0, 2);
    std::string_view value = line.substr(3);
    if (tag == "id" && !have_id) {
      auto v = pct_decode(value);
      if (!v) return std::nullopt;
      e.owner.container_id = *v;
      have_id = true;
    } else if (tag == "if" && !have_if) {
      auto v = pct_decode(value);
      if (!v) return std::nullopt;
      e.owner.ifname = *v;
      have_if = true;
    } else if (tag == "ip") {
      auto ip = IpAddress::try_parse(value);
      if (!ip) return std::nullopt;
      e.ips.push_back(*ip);
    } else {
      return std::nullopt;
    }
  }
  if (!have_id || !have_if) return std::nullopt;
  return e;
}

// Makes every missing directory of `path` with mode 0700.
void make_dirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      throw_errno(errno, "failed to create directory \"" + prefix + "\"");
    }
  }
}

// The nanoseconds are zero-padded to nine digits so that the stamp keeps its length from one
// rewrite to the next: write_file then never cuts it, and an ADD makes the same system calls
// whatever the clock says (the SIGKILL sweep counts them and kills at each).
std::string stamp_text(const struct stat& st) {
  std::string nsec = std::to_string(st.st_mtim.tv_nsec);
  if (nsec.size() < 9) nsec.insert(0, 9 - nsec.size(), '0');
  return std::string(kStampMagic) + " " + std::to_string(st.st_dev) + " " +
         std::to_string(st.st_ino) + " " + std::to_string(st.st_mtim.tv_sec) + "." + nsec + "\n";
}

}  // namespace

std::string DiskStore::entry_name(const LeaseOwner& owner) {
  if (cni::is_valid_name(owner.container_id) && owner.ifname.size() <= 64) {
    std::string name = "k." + owner.container_id + "@" + pct_encode(owner.ifname);
    if (name.size() <= 200) return name;
  }
  char buf[32];
  // Unframed FNV-1a of "<id>\0<ifname>": the name entries have on disk (see hash.h).
  const std::string key = owner.container_id + '\0' + owner.ifname;
  std::snprintf(buf, sizeof buf, "h.%016llx",
                static_cast<unsigned long long>(cni::fnv1a64_bytes(key)));
  return buf;
}

std::unique_ptr<DiskStore> DiskStore::open(const std::string& data_dir, const std::string& network,
                                           bool create) {
  // The name becomes a path component: the spec's pattern admits no '/', no leading '.',
  // no NUL; NAME_MAX bounds it.
  if (!cni::is_valid_name(network) || network.size() > 255) {
    throw cni::Error(cni::kErrInvalidConfig,
                     "invalid network name \"" + network + "\": it names the lease directory");
  }
  if (data_dir.empty() || data_dir.find('\0') != std::string::npos) {
    throw cni::Error(cni::kErrInvalidConfig,
                     "invalid config: \"ipam.dataDir\": \"" + data_dir + "\" is not a usable path");
  }
  std::string path = join(data_dir, network);
  if (create) {
    make_dirs(data_dir);
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      throw_errno(errno, "failed to create directory \"" + path + "\"");
    }
  }
  UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (!create && errno == ENOENT) return nullptr;
    throw_errno(errno, "failed to open \"" + path + "\"");
  }
  std::unique_ptr<DiskStore> s(new DiskStore(std::move(path), std::move(dir)));
  s->lock();
  s->open_index();
  return s;
}

DiskStore::DiskStore(std::string path, UniqueFd dir)
    : path_(std::move(path)), dir_(std::move(dir)) {}

DiskStore::~DiskStore() {
  if (consistent_ && !degraded_ && (dirty_ || rebuilt_)) write_stamp();
  // Closing lock_ (a member, after this body) releases the flock.
}

void DiskStore::lock() {
  // The same file upstream locks (go-filemutex on <dir>/lock), so both binaries serialise.
  lock_.reset(openat(dir_.get(), "lock", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock_) throw_errno(errno, "failed to open lock file \"" + join(path_, "lock") + "\"");
  while (flock(lock_.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw_errno(errno, "failed to lock \"" + join(path_, "lock") + "\"");
  }
}

void DiskStore::open_index() {
  // Created before the directory is stat()ed: making it changes the directory's mtime.
  if (mkdirat(dir_.get(), kIndexDir, 0700) != 0 && errno != EEXIST) {
    throw_errno(errno, "failed to create \"" + join(path_, kIndexDir) + "\"");
  }
  index_.reset(openat(dir_.get(), kIndexDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!index_) throw_errno(errno, "failed to open \"" + join(path_, kIndexDir) + "\"");
  if (!stamp_matches()) rebuild();
}

bool DiskStore::stamp_matches() const {
  struct stat st {};
  if (fstat(dir_.get(), &st) != 0) return false;
  auto stamp = read_small(index_.get(), kStampFile);
  return stamp && *stamp == stamp_text(st);
}

void DiskStore::write_stamp() noexcept {
  // Move the mtime into the past (see the class comment): any later change to the directory
  // then gives it a different mtime, however coarse the file system's clock.
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  timespec times[2] = {{0, UTIME_OMIT}, {now.tv_sec - 2, now.tv_nsec}};
  struct stat st {};
  if (futimens(dir_.get(), times) != 0 || fstat(dir_.get(), &st) != 0) {
    unlinkat(index_.get(), kStampFile, 0);
    return;
  }
  try {
    write_file(index_.get(), kStampFile, stamp_text(st), "index stamp");
  } catch (const std::exception&) {
    unlinkat(index_.get(), kStampFile, 0);
  }
}

std::optional<LeaseOwner> DiskStore::read_lease(const std::string& name) const {
  auto content = read_small(dir_.get(), name);
  if (!content) return std::nullopt;
  return parse_lease(*content);
}

template <class Fn>
void DiskStore::for_each_lease_name(Fn fn) const {
  DirPtr d = open_dir(dir_.get(), ".");
  if (!d) throw_errno(errno, "failed to read directory \"" + path_ + "\"");
  while (dirent* e = readdir(d.get())) {
    // Leases are the files named by an address as Go prints it; this skips lock,
    // last_reserved_ip.*, .strait and anything else.
    auto ip = IpAddress::try_parse(e->d_name);
    if (!ip || ip->str() != e->d_name || !is_regular(dir_.get(), e)) continue;
    fn(*ip, e->d_name);
  }
}

std::vector<Lease> DiskStore::scan() const {
  std::vector<Lease> leases;
  for_each_lease_name([&](const IpAddress& ip, const char* name) {
    auto owner = read_lease(name);
    if (owner) leases.push_back({ip, std::move(*owner)});  // else vanished or unreadable:
  });                                                      // upstream skips those too
  return leases;
}

std::vector<IpAddress> DiskStore::addresses() {
  std::vector<IpAddress> out;
  for_each_lease_name([&](const IpAddress& ip, const char*) { out.push_back(ip); });
  return out;
}

void DiskStore::rebuild() {
  // Drop the stamp first: if this is interrupted, the next operation rebuilds again.
  if (unlinkat(index_.get(), kStampFile, 0) != 0 && errno != ENOENT) {
    throw_errno(errno, "failed to remove \"" + join(join(path_, kIndexDir), kStampFile) + "\"");
  }
  std::vector<Lease> leases = scan();
  cache_.clear();
  for (auto& l : leases) cache_[{l.owner.container_id, l.owner.ifname}].push_back(l.ip);
  full_ = true;
  rebuilt_ = true;
  dirty_ = true;

  {
    DirPtr d = open_dir(index_.get(), ".");
    if (!d) throw_errno(errno, "failed to read directory \"" + join(path_, kIndexDir) + "\"");
    std::vector<std::string> old;
    while (dirent* e = readdir(d.get())) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == kStampFile) continue;
      if (is_regular(index_.get(), e)) old.push_back(name);
    }
    for (const auto& name : old) {
      if (unlinkat(index_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        throw_errno(errno, "failed to remove index entry \"" + name + "\"");
      }
    }
  }

  std::set<std::string> names;
  degraded_ = false;
  for (const auto& [key, ips] : cache_) {
    if (!names.insert(entry_name({key.first, key.second})).second) degraded_ = true;
  }
  if (degraded_) return;
  for (const auto& [key, ips] : cache_) write_entry({key.first, key.second}, ips);
}

std::optional<std::vector<IpAddress>> DiskStore::read_entry(const LeaseOwner& owner) const {
  auto text = read_small(index_.get(), entry_name(owner));
  if (!text) {
    if (errno == ENOENT) return std::vector<IpAddress>{};
    return std::nullopt;
  }
  auto e = parse_entry(*text);
  if (!e || e->owner != owner) return std::nullopt;
  return e->ips;
}

std::vector<IpAddress>& DiskStore::entry(const LeaseOwner& owner) {
  std::pair<std::string, std::string> key{owner.container_id, owner.ifname};
  if (auto it = cache_.find(key); it != cache_.end() || full_) return cache_[key];
  auto ips = read_entry(owner);
  if (!ips) {
    rebuild();
    return cache_[key];
  }
  return cache_[key] = std::move(*ips);
}

void DiskStore::write_entry(const LeaseOwner& owner, const std::vector<IpAddress>& ips) {
  if (degraded_) return;
  std::string name = entry_name(owner);
  if (ips.empty()) {
    if (unlinkat(index_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      throw_errno(errno, "failed to remove index entry \"" + name + "\"");
    }
    return;
  }
  write_file(index_.get(), name, format_entry(owner, ips), "index entry \"" + name + "\"");
}

bool DiskStore::reserve(const IpAddress& ip, const LeaseOwner& owner, size_t range_set) {
  check_owner(owner);
  // Read the entry before creating the lease, so that a rebuild it may trigger does not
  // count the new lease twice.
  entry(owner);
  std::string name = ip.str();
  UniqueFd fd(
      openat(dir_.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST) return false;
    throw_errno(errno, "failed to create lease \"" + join(path_, name) + "\"");
  }
  consistent_ = false;
  dirty_ = true;
  try {
    write_all(fd.get(), owner.container_id + kLineBreak + owner.ifname,
              "lease \"" + join(path_, name) + "\"");
    if (close(fd.release()) != 0) {
      throw_errno(errno, "failed to write lease \"" + join(path_, name) + "\"");
    }
    write_file(dir_.get(), kLastReservedPrefix + std::to_string(range_set), name,
               "\"" + join(path_, kLastReservedPrefix + std::to_string(range_set)) + "\"");
  } catch (...) {
    unlinkat(dir_.get(), name.c_str(), 0);
    throw;
  }
  auto& ips = entry(owner);
  if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
  write_entry(owner, ips);
  consistent_ = true;
  return true;
}

std::optional<IpAddress> DiskStore::last_reserved(size_t range_set) {
  auto text = read_small(dir_.get(), kLastReservedPrefix + std::to_string(range_set));
  if (!text) return std::nullopt;
  // Upstream: "We might get a last reserved IP that is wrong if the range indexes changed.
  // This is not critical, we just lose round-robin this one time."
  return IpAddress::try_parse(trim(*text));
}

void DiskStore::release(const IpAddress& ip) {
  std::string name = ip.str();
  auto owner = read_lease(name);
  if (!owner) {
    if (errno == ENOENT) return;
    // Unreadable: remove it anyway, and let the next operation rebuild the index.
    consistent_ = false;
  }
  if (owner) entry(*owner);  // before the unlink: a rebuild must still see the lease
  if (unlinkat(dir_.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return;
    throw_errno(errno, "failed to remove lease \"" + join(path_, name) + "\"");
  }
  dirty_ = true;
  if (!owner) return;
  consistent_ = false;  // until the index follows
  auto& ips = entry(*owner);
  ips.erase(std::remove(ips.begin(), ips.end(), ip), ips.end());
  write_entry(*owner, ips);
  consistent_ = true;
}

std::vector<Lease> DiskStore::find(const std::string& container_id, const std::string& ifname) {
  std::vector<LeaseOwner> owners = {{container_id, ifname}};
  if (!ifname.empty()) owners.push_back({container_id, ""});
  for (int attempt = 0;; ++attempt) {
    std::vector<Lease> out;
    bool stale = false;
    for (const auto& o : owners) {
      for (const auto& ip : entry(o)) {
        // Trust but verify: the lease must exist and name this owner.
        if (!full_) {
          auto holder = read_lease(ip.str());
          if (!holder || *holder != o) stale = true;
        }
        out.push_back({ip, o});
      }
    }
    if (!stale || attempt > 0) return out;
    rebuild();
  }
}

std::vector<Lease> DiskStore::list() {
  if (!full_) return scan();
  std::vector<Lease> out;
  for (const auto& [key, ips] : cache_) {
    for (const auto& ip : ips) out.push_back({ip, {key.first, key.second}});
  }
  return out;
}

void DiskStore::check_writable() const {
  if (faccessat(dir_.get(), ".", W_OK, AT_EACCESS) != 0) {
    throw_errno(errno, "cannot write to \"" + path_ + "\"");
  }
  struct statvfs vfs {};
  if (fstatvfs(dir_.get(), &vfs) != 0) throw_errno(errno, "failed to statvfs \"" + path_ + "\"");
  if (vfs.f_flag & ST_RDONLY) throw_errno(EROFS, "cannot write to \"" + path_ + "\"");
  if (vfs.f_bfree == 0 || (vfs.f_files > 0 && vfs.f_ffree == 0)) {
    throw_errno(ENOSPC, "cannot write to \"" + path_ + "\"");
  }
}

}  // namespace ipam
