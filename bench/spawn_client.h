#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "bench/spawn_protocol.h"
#include "libcni/core/fd.h"

// The bench's side of strait-bench-spawn (spawn_protocol.h): starts the server inside the
// lab's host namespace, as `ip netns exec` would run a runtime there (own mount namespace,
// /sys remounted so it shows the host namespace's devices), then runs plugins through it.
namespace strait::bench {

struct Exec {
  SpawnReply stats;
  std::string out;
  std::string err;
  double ms() const { return static_cast<double>(stats.elapsed_ns) / 1e6; }
  double cpu_ms() const { return static_cast<double>(stats.utime_us + stats.stime_us) / 1e3; }
};

class SpawnClient {
 public:
  // `server` is the strait-bench-spawn binary; `netns` the namespace it runs in.
  SpawnClient(const std::string& server, const std::string& netns);
  ~SpawnClient();  // closes the request pipe (the server exits) and reaps it
  SpawnClient(const SpawnClient&) = delete;
  SpawnClient& operator=(const SpawnClient&) = delete;

  // Runs `path` with exactly `env` ("KEY=VALUE") and `input` on stdin.
  Exec run(const std::string& path, const std::vector<std::string>& env, std::string_view input);

 private:
  pid_t pid_ = -1;
  cni::UniqueFd to_;
  cni::UniqueFd from_;
};

}  // namespace strait::bench
