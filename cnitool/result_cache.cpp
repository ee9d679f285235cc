#include "cnitool/result_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "libcni/core/base64.h"
#include "libcni/core/error.h"
#include "libcni/core/fd.h"
#include "libcni/core/read_file.h"

namespace cni::tool {

namespace {

namespace fs = std::filesystem;

std::system_error os_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

// mkdir -p with mode 0700 for every directory it creates (Go's os.MkdirAll(dir, 0o700)).
void make_dirs(const std::string& dir) {
  if (dir.empty()) return;
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      throw os_error("failed to create cache directory \"" + dir + "\"");
    }
    return;
  }
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs(dir.substr(0, slash));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw os_error("failed to create cache directory \"" + dir + "\"");
  }
}

void write_atomically(const std::string& path, const std::string& data) {
  std::string tmpl = path + ".tmp-XXXXXX";
  UniqueFd fd(mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) throw os_error("failed to create \"" + tmpl + "\"");
  bool done = false;
  struct Unlink {
    const std::string& p;
    bool& keep;
    ~Unlink() {
      if (!keep) unlink(p.c_str());
    }
  } cleanup{tmpl, done};
  if (fchmod(fd.get(), 0600) != 0) throw os_error("failed to chmod \"" + tmpl + "\"");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw os_error("failed to write \"" + tmpl + "\"");
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) throw os_error("failed to sync \"" + tmpl + "\"");
  if (close(fd.release()) != 0) throw os_error("failed to close \"" + tmpl + "\"");
  if (rename(tmpl.c_str(), path.c_str()) != 0) {
    throw os_error("failed to rename \"" + tmpl + "\" to \"" + path + "\"");
  }
  done = true;
}

[[noreturn]] void bad_entry(const std::string& key, const std::string& why) {
  throw Error(kErrDecode, "invalid cache entry: \"" + key + "\" " + why);
}

std::string get_str(const nlohmann::json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) bad_entry(key, "is missing");
    return {};
  }
  if (!it->is_string()) bad_entry(key, "must be a string");
  return it->get<std::string>();
}

}  // namespace

nlohmann::json CachedAttachment::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  j["kind"] = kCacheKindV1;
  j["containerId"] = container_id;
  j["config"] = base64_encode(config);
  j["ifName"] = ifname;
  j["networkName"] = network;
  if (!netns.empty()) j["netns"] = netns;
  if (!cni_args.empty()) {
    nlohmann::json args = nlohmann::json::array();
    for (const auto& [k, v] : cni_args) args.push_back({k, v});
    j["cniArgs"] = args;
  }
  if (capability_args.is_object() && !capability_args.empty()) {
    j["capabilityArgs"] = capability_args;
  }
  if (result.is_object() && !result.empty()) j["result"] = result;
  return j;
}

CachedAttachment CachedAttachment::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error(kErrDecode, "invalid cache entry: not a JSON object");
  if (get_str(j, "kind", false) != kCacheKindV1) bad_entry("kind", "is not \"cniCacheV1\"");
  CachedAttachment a;
  a.container_id = get_str(j, "containerId", false);
  a.network = get_str(j, "networkName", false);
  a.ifname = get_str(j, "ifName", false);
  a.netns = get_str(j, "netns", false);
  std::string config = get_str(j, "config", false);
  auto decoded = base64_decode(config);
  if (!decoded) bad_entry("config", "is not base64");
  a.config = *decoded;
  if (auto it = j.find("cniArgs"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) bad_entry("cniArgs", "must be a list");
    for (const auto& pair : *it) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
        bad_entry("cniArgs", "must hold [key, value] string pairs");
      }
      a.cni_args.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  if (auto it = j.find("capabilityArgs"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) bad_entry("capabilityArgs", "must be an object");
    a.capability_args = *it;
  }
  if (auto it = j.find("result"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) bad_entry("result", "must be an object");
    a.result = *it;
  }
  return a;
}

std::string ResultCache::file_path(const std::string& network, const std::string& container_id,
                                   const std::string& ifname) const {
  if (network.empty() || container_id.empty() || ifname.empty()) {
    throw Error(kErrInvalidConfig, "cache file path requires network name (\"" + network +
                                       "\"), container ID (\"" + container_id +
                                       "\"), and interface name (\"" + ifname + "\")");
  }
  return results_dir() + "/" + network + "-" + container_id + "-" + ifname;
}

void ResultCache::store(const CachedAttachment& a) const {
  std::string path = file_path(a.network, a.container_id, a.ifname);
  make_dirs(results_dir());
  write_atomically(path, a.to_json().dump());
}

std::optional<CachedAttachment> ResultCache::load(const std::string& network,
                                                  const std::string& container_id,
                                                  const std::string& ifname) const {
  std::string path = file_path(network, container_id, ifname);
  auto data = read_whole_file(path);
  if (!data) return std::nullopt;
  auto j = nlohmann::json::parse(*data, nullptr, false);
  if (j.is_discarded()) throw Error(kErrDecode, "invalid cache entry \"" + path + "\": not JSON");
  try {
    return CachedAttachment::from_json(j);
  } catch (const Error& e) {
    throw Error(e.code(), "\"" + path + "\": " + e.msg());
  }
}

std::optional<nlohmann::json> ResultCache::load_result(const std::string& network,
                                                       const std::string& container_id,
                                                       const std::string& ifname) const {
  std::string path = file_path(network, container_id, ifname);
  auto data = read_whole_file(path);
  if (!data) return std::nullopt;
  auto j = nlohmann::json::parse(*data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(kErrDecode, "invalid cache entry \"" + path + "\": not a JSON object");
  }
  if (j.value("kind", std::string()) != kCacheKindV1) return j;  // legacy: the bare result
  auto a = CachedAttachment::from_json(j);
  if (a.result.is_null()) return std::nullopt;
  return a.result;
}

void ResultCache::remove(const std::string& network, const std::string& container_id,
                         const std::string& ifname) const {
  std::string path = file_path(network, container_id, ifname);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw os_error("failed to remove \"" + path + "\"");
  }
  // A cnitool killed between creating write_atomically's temporary file and renaming it left
  // "<entry>.tmp-XXXXXX" behind (found by test/integration/fault_injection_test.cpp). The
  // runtime never runs two operations on one attachment at once, so no writer is using it
  // when the attachment goes. Best effort: the entry itself is gone.
  const std::string prefix = fs::path(path).filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(results_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0) {
      unlink(it->path().c_str());
    }
  }
}

std::vector<CachedAttachment> ResultCache::list() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(results_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<CachedAttachment> out;
  for (const auto& name : names) {
    auto data = read_whole_file(results_dir() + "/" + name);
    if (!data) continue;
    auto j = nlohmann::json::parse(*data, nullptr, false);
    if (j.is_discarded()) continue;
    try {
      auto a = CachedAttachment::from_json(j);
      if (a.ifname.empty() || a.network.empty()) continue;
      out.push_back(std::move(a));
    } catch (const Error&) {
      continue;
    }
  }
  return out;
}

}  // namespace cni::tool
