#include "ipam/global/block_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <functional>
#include <string_view>

#include "libcni/core/fd.h"
#include "libcni/core/hash.h"

namespace ipam {

namespace {

// "strait-block-cache 2 <body length> <hash of the body>\n", then the body. The file is
// rewritten in place (not a temporary file renamed over it: on ext4 a rename over an existing
// file flushes the new file's data to the disk first, inside the node lock), so a holder
// killed mid-write leaves a torn file, which the length and hash refuse as a whole.
constexpr char kMagic[] = "strait-block-cache 2 ";

uint64_t body_hash(std::string_view body) { return std::hash<std::string_view>{}(body); }

bool is_block_key(const std::string& key) { return key.rfind("blocks/", 0) == 0; }

// Parses "<number> " at `pos`, advancing it.
template <class T>
bool number(const std::string& s, size_t& pos, T& out, char end) {
  size_t stop = s.find(end, pos);
  if (stop == std::string::npos) return false;
  auto [p, ec] = std::from_chars(s.data() + pos, s.data() + stop, out);
  if (ec != std::errc() || p != s.data() + stop) return false;
  pos = stop + 1;
  return true;
}

}  // namespace

std::string BlockCache::path_for(const std::string& queue_dir, const std::string& store_id) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(cni::stable_hash64({store_id})));
  return queue_dir + "/cache." + hex;
}

BlockCache::BlockCache(std::string path) : path_(std::move(path)) {
  cni::UniqueFd fd(open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return;
  std::string s;
  char buf[65536];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof buf)) > 0;) s.append(buf, static_cast<size_t>(n));
  if (s.rfind(kMagic, 0) != 0) return;
  size_t pos = sizeof kMagic - 1;
  size_t length = 0;
  uint64_t hash = 0;
  if (!number(s, pos, length, ' ') || !number(s, pos, hash, '\n') || length != s.size() - pos ||
      hash != body_hash(std::string_view(s).substr(pos))) {
    return;  // torn or foreign: nothing cached
  }
  std::map<std::string, KvEntry> blocks;
  std::map<std::string, KvEntry> handles;
  while (pos < s.size()) {
    if (pos + 2 > s.size() || (s[pos] != 'B' && s[pos] != 'H') || s[pos + 1] != ' ') return;
    char kind = s[pos];
    pos += 2;
    int64_t rev = 0;
    size_t klen = 0;
    size_t vlen = 0;
    if (!number(s, pos, rev, ' ') || !number(s, pos, klen, ' ') || !number(s, pos, vlen, '\n') ||
        klen > s.size() - pos || vlen >= s.size() - pos - klen ||  // (no wrap-around)
        s[pos + klen + vlen] != '\n') {
      return;  // malformed: nothing cached
    }
    KvEntry e{s.substr(pos, klen), s.substr(pos + klen, vlen), rev};
    pos += klen + vlen + 1;
    (kind == 'B' ? blocks : handles)[e.key] = std::move(e);
  }
  blocks_ = std::move(blocks);
  handles_ = std::move(handles);
}

const KvEntry* BlockCache::handle(const std::string& key) const {
  auto it = handles_.find(key);
  return it == handles_.end() ? nullptr : &it->second;
}

void BlockCache::put(const KvEntry& e) {
  auto& m = is_block_key(e.key) ? blocks_ : handles_;
  auto it = m.find(e.key);
  if (it != m.end() && it->second.revision == e.revision && it->second.value == e.value) return;
  m[e.key] = e;
  if (handles_.size() > kMaxHandles) handles_.erase(handles_.begin());
  dirty_ = true;
}

void BlockCache::forget(const std::string& key) {
  dirty_ = (is_block_key(key) ? blocks_ : handles_).erase(key) > 0 || dirty_;
}

void BlockCache::save() {
  if (!dirty_ || path_.empty()) return;
  std::string body;
  size_t size = 0;
  for (const auto* m : {&blocks_, &handles_}) {
    for (const auto& [key, e] : *m) size += key.size() + e.value.size() + 48;
  }
  body.reserve(size);
  for (const auto* m : {&blocks_, &handles_}) {
    char kind = m == &blocks_ ? 'B' : 'H';
    for (const auto& [key, e] : *m) {
      char line[80];
      int n = std::snprintf(line, sizeof line, "%c %lld %zu %zu\n", kind,
                            static_cast<long long>(e.revision), key.size(), e.value.size());
      body.append(line, static_cast<size_t>(n));
      body += key;
      body += e.value;
      body += '\n';
    }
  }
  char head[80];
  int n = std::snprintf(head, sizeof head, "%s%zu %llu\n", kMagic, body.size(),
                        static_cast<unsigned long long>(body_hash(body)));
  std::string out(head, static_cast<size_t>(n));
  out += body;
  cni::UniqueFd fd(open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return;
  size_t off = 0;
  while (off < out.size()) {
    ssize_t w = pwrite(fd.get(), out.data() + off, out.size() - off, static_cast<off_t>(off));
    if (w <= 0) {
      if (ftruncate(fd.get(), 0) != 0) unlink(path_.c_str());  // no half a cache
      return;
    }
    off += static_cast<size_t>(w);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || static_cast<size_t>(st.st_size) != out.size()) {
    if (ftruncate(fd.get(), static_cast<off_t>(out.size())) != 0) unlink(path_.c_str());
  }
  dirty_ = false;
}

}  // namespace ipam
