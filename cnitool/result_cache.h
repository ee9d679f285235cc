#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace cni::tool {

// One attachment as libcni caches it after a successful ADD (libcni/api.go cachedInfo,
// kind "cniCacheV1"), so that cnitool and Go runtimes read each other's cache.
struct CachedAttachment {
  std::string container_id;
  std::string network;
  std::string ifname;
  std::string config;  // the network list bytes (base64 in the file, as Go writes []byte)
  std::string netns;
  std::vector<std::pair<std::string, std::string>> cni_args;
  nlohmann::json capability_args = nlohmann::json::object();
  nlohmann::json result;  // the final ADD result; null when absent

  // {"kind":"cniCacheV1","containerId","config","ifName","networkName","netns"?,
  //  "cniArgs"?,"capabilityArgs"?,"result"?}; optional keys are left out when empty, as
  // Go's omitempty does.
  nlohmann::json to_json() const;
  // Throws Error{kErrDecode} naming the key when `j` is not a cniCacheV1 object.
  static CachedAttachment from_json(const nlohmann::json& j);
};

inline constexpr const char* kCacheKindV1 = "cniCacheV1";
inline constexpr const char* kDefaultCacheDir = "/var/lib/cni";

// The result cache under `<root>/results/<network>-<containerID>-<ifname>` (libcni's
// CacheDir layout; root defaults to /var/lib/cni). Files are 0600 in 0700 directories and are
// replaced atomically (temporary file + rename), so a crash never leaves half a file.
class ResultCache {
 public:
  explicit ResultCache(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string results_dir() const { return root_ + "/results"; }
  // Throws Error{kErrInvalidConfig} when any part is empty (libcni getCacheFilePath).
  std::string file_path(const std::string& network, const std::string& container_id,
                        const std::string& ifname) const;

  void store(const CachedAttachment& a) const;
  // nullopt when there is no file; throws Error{kErrDecode} when it is not a cniCacheV1 entry.
  std::optional<CachedAttachment> load(const std::string& network, const std::string& container_id,
                                       const std::string& ifname) const;
  // The cached ADD result: "result" of a cniCacheV1 entry, or the whole file for the legacy
  // format (libcni < 0.8 stored the bare result). nullopt when there is no file or no result.
  std::optional<nlohmann::json> load_result(const std::string& network,
                                            const std::string& container_id,
                                            const std::string& ifname) const;
  // A missing file is not an error. Also removes the entry's "<entry>.tmp-XXXXXX" files a
  // killed writer left between creating and renaming them.
  void remove(const std::string& network, const std::string& container_id,
              const std::string& ifname) const;
  // Every readable cniCacheV1 entry with a network and an ifname, in file name order (libcni
  // GetCachedAttachments); unreadable files are skipped, a missing directory is empty.
  std::vector<CachedAttachment> list() const;

 private:
  std::string root_;
};

}  // namespace cni::tool
