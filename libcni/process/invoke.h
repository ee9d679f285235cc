#pragma once

#include <chrono>
#include <memory>
#include <optional>
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
  // Set when spawn killed the child at SpawnOptions::timeout (exit_code is then 137); out and
  // err hold what it wrote until then.
  std::optional<std::chrono::milliseconds> timed_out_after{};
};

struct SpawnOptions {
  // From the spawn until the child has exited and closed its output; on expiry the child gets
  // SIGKILL and spawn returns without waiting for its output to end (a grandchild may still
  // hold the pipes). nullopt: no bound.
  std::optional<std::chrono::milliseconds> timeout{};
};

// A run that ExecRunner::start began: the child goes on while the caller does other work.
// Destroying it unfinished kills the child and reaps it.
class StartedExec {
 public:
  virtual ~StartedExec() = default;
  // Feeds the rest of stdin, collects both outputs and reaps the child, within the runner's
  // timeout (counted from the start). Once only.
  virtual ExecResult finish() = 0;
};

// The seam between the code that runs plugins (IPAM delegation, cnitool) and the OS.
class ExecRunner {
 public:
  virtual ~ExecRunner() = default;
  virtual ExecResult run(const std::string& path, const EnvMap& env, std::string_view input) = 0;
  // Starts a run and returns without waiting for it. This default runs it to the end before
  // returning: runners that start no process (test doubles) need nothing more.
  virtual std::unique_ptr<StartedExec> start(const std::string& path, const EnvMap& env,
                                             std::string_view input);
};

// Runs argv[0] (a path, no PATH lookup, no shell) with `argv`, exactly `env`, and `input` on
// stdin; collects stdout and stderr, feeding and draining together so that neither side
// blocks on a full pipe. Blocks SIGPIPE in the calling thread while feeding stdin. Failures
// of the OS (pipes, the exec, polling) throw std::system_error naming the program; a child
// already started is then killed and reaped, never left blocked on a pipe nobody drains.
ExecResult spawn(const std::vector<std::string>& argv, const EnvMap& env, std::string_view input,
                 const SpawnOptions& options = {});
// spawn() in two halves: the child is started, and as much of `input` as the pipe takes is
// written at once (a copy is kept for the rest); finish() does the rest of spawn(). Between
// the two the child's output waits in its pipes: a child that writes more than a pipe holds
// (64 KiB) waits for finish() to drain it. For its first 5 ms (longer only until finish()
// waits), the child may not run on the CPU the caller was on when it started it (when the
// caller may use another), so that the two run side by side; then it gets the caller's CPU
// set back.
std::unique_ptr<StartedExec> spawn_start(const std::vector<std::string>& argv, const EnvMap& env,
                                         std::string_view input, const SpawnOptions& options = {});

// spawn() of the plugin binary alone.
class SpawnRunner : public ExecRunner {
 public:
  explicit SpawnRunner(SpawnOptions options = {}) : options_(options) {}
  ExecResult run(const std::string& path, const EnvMap& env, std::string_view input) override;
  std::unique_ptr<StartedExec> start(const std::string& path, const EnvMap& env,
                                     std::string_view input) override;

 private:
  SpawnOptions options_;
};

// How long a plugin lets a plugin it delegates to (IPAM) run before killing it. Every plugin
// executable applies it (skel_main). kubelet gives a pod sandbox 4 minutes (twice its 2-minute
// runtime request timeout), and a failed ADD spends up to two delegate calls (ADD, then the
// rollback's DEL), so 60 s leaves room for the runtime's own work and a second plugin.
inline constexpr std::chrono::seconds kDefaultDelegateTimeout{60};
// The environment variable that changes it, in whole seconds (1 to 3600). The runtime's
// environment reaches its plugins (containerd and CRI-O pass theirs on), and a plugin passes
// its whole environment to its delegates.
inline constexpr std::string_view kDelegateTimeoutVar = "STRAIT_DELEGATE_TIMEOUT";
// kDelegateTimeoutVar's value, or the default when unset. Throws Error{kErrInvalidEnv} naming
// the variable and the value when it is not a whole number of seconds in range.
std::chrono::milliseconds delegate_timeout(const EnvMap& env);

// Finds an executable named `type` (no '/', not "." or "..") in the directories of `path`.
// Throws Error{kErrInvalidConfig} "failed to find plugin "x" in path [a b]".
std::string find_plugin(std::string_view type, const std::vector<std::string>& path);

// Runs the plugin `type` found on `path` with `env` (whose CNI_COMMAND is replaced by
// `command`) and `input` on stdin. Exit 0 returns stdout. A non-zero exit rethrows the
// plugin's error JSON as Error with its code, msg and details; a non-JSON failure becomes
// Error{kErrInternal} quoting stderr; a plugin killed at the runner's timeout is
// Error{kErrInternal} `plugin "host-local" did not finish within 60 s and was killed`.
std::string invoke_plugin(ExecRunner& runner, std::string_view type,
                          const std::vector<std::string>& path, std::string_view command,
                          EnvMap env, std::string_view input);

// invoke_plugin() in two halves, through ExecRunner::start: the plugin runs while the caller
// goes on. Starting throws what invoke_plugin throws before the plugin runs (no such plugin,
// an OS failure to start it); finish() returns its stdout or throws as invoke_plugin does.
class StartedPlugin {
 public:
  StartedPlugin(std::string type, std::unique_ptr<StartedExec> exec)
      : type_(std::move(type)), exec_(std::move(exec)) {}
  // Once only.
  std::string finish();

 private:
  std::string type_;
  std::unique_ptr<StartedExec> exec_;
};
StartedPlugin start_plugin(ExecRunner& runner, std::string_view type,
                           const std::vector<std::string>& path, std::string_view command,
                           EnvMap env, std::string_view input);

}  // namespace cni
