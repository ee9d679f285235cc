#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/protocol/env.h"

namespace cni {

struct ExecResult {
  int exit_code = 0;  // 128+signal when killed by a signal
  std::string out;
  std::string err;
};

// The seam between the code that runs plugins (IPAM delegation, cnitool) and the OS.
class ExecRunner {
 public:
  virtual ~ExecRunner() = default;
  virtual ExecResult run(const std::string& path, const EnvMap& env, std::string_view input) = 0;
};

// Runs argv[0] (a path, no PATH lookup, no shell) with `argv`, exactly `env`, and `input` on
// stdin; collects stdout and stderr. Blocks SIGPIPE while feeding stdin.
ExecResult spawn(const std::vector<std::string>& argv, const EnvMap& env, std::string_view input);

// spawn() of the plugin binary alone.
class SpawnRunner : public ExecRunner {
 public:
  ExecResult run(const std::string& path, const EnvMap& env, std::string_view input) override;
};

// Finds an executable named `type` (no '/', not "." or "..") in the directories of `path`.
// Throws Error{kErrInvalidConfig} "failed to find plugin "x" in path [a b]".
std::string find_plugin(std::string_view type, const std::vector<std::string>& path);

// Runs the plugin `type` found on `path` with `env` (whose CNI_COMMAND is replaced by
// `command`) and `input` on stdin. Exit 0 returns stdout. A non-zero exit rethrows the
// plugin's error JSON as Error with its code, msg and details; a non-JSON failure becomes
// Error{kErrInternal} quoting stderr.
std::string invoke_plugin(ExecRunner& runner, std::string_view type,
                          const std::vector<std::string>& path, std::string_view command,
                          EnvMap env, std::string_view input);

}  // namespace cni
