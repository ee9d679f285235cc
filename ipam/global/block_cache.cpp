#include "ipam/global/block_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "libcni/core/fd.h"
#include "libcni/core/hash.h"

namespace ipam {

namespace {

constexpr char kHeader[] = "strait-block-cache 1\n";

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
  if (s.rfind(kHeader, 0) != 0) return;
  size_t pos = sizeof kHeader - 1;
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
  std::string out = kHeader;
  for (const auto* m : {&blocks_, &handles_}) {
    char kind = m == &blocks_ ? 'B' : 'H';
    for (const auto& [key, e] : *m) {
      out += std::string(1, kind) + " " + std::to_string(e.revision) + " " +
             std::to_string(key.size()) + " " + std::to_string(e.value.size()) + "\n" + key +
             e.value + "\n";
    }
  }
  std::string tmp = path_ + ".tmp" + std::to_string(getpid());
  cni::UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return;
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = write(fd.get(), out.data() + off, out.size() - off);
    if (n <= 0) {
      unlink(tmp.c_str());
      return;
    }
    off += static_cast<size_t>(n);
  }
  fd.reset();
  if (rename(tmp.c_str(), path_.c_str()) != 0) unlink(tmp.c_str());
  dirty_ = false;
}

}  // namespace ipam
