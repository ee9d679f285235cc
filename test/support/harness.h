#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/protocol/env.h"

// Helpers for integration tests: namespaces and directories that clean up after
// themselves, shell commands for set-up and inspection, and running the real binaries.
namespace strait::test {

// A name unique to this process and call: prefix + pid + counter, at most `max_len` bytes
// (interface names must stay <= 15).
std::string unique_name(std::string_view prefix, size_t max_len = 15);

// Runs `cmd` with /bin/sh -c; returns the exit status and fills `out` with stdout+stderr.
int sh(const std::string& cmd, std::string* out = nullptr);
// Like sh() but throws std::runtime_error with the output when the command fails.
std::string sh_ok(const std::string& cmd);
// sh_ok() for a read-only inspection (`tc qdisc show`, `ip link show`) whose output a test
// compares: run again while iproute2 reports "Dump was interrupted and may be inconsistent"
// (NLM_F_DUMP_INTR: the netns changed during the dump, e.g. another test's links), so that a
// snapshot is one consistent dump. Throws after 50 interrupted dumps.
std::string inspect(const std::string& cmd);

// A network namespace made with `ip netns add <unique name>`, deleted on destruction.
class TempNetns {
 public:
  explicit TempNetns(std::string_view prefix = "st");
  ~TempNetns();
  TempNetns(const TempNetns&) = delete;
  TempNetns& operator=(const TempNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // Runs `cmd` inside the namespace (ip netns exec); throws on failure.
  std::string exec(const std::string& cmd) const;
  // Names of the links in the namespace ("lo" included). Only stdout of `ip` is read:
  // iproute2 may print "Peer netns reference is invalid" on stderr for a macvlan whose
  // master's netns id is not mapped here.
  std::set<std::string> links() const;
  // Deletes the namespace early (a test of DEL with a vanished netns).
  void remove();

 private:
  std::string name_;
  bool alive_ = true;
};

// The links the kernel puts in a new network namespace, plus `plus`: "lo", and the fallback
// device of each tunnel module loaded (tunl0 with ipip, as in the VM suites). What a pod netns
// holds with nothing attached. Makes a namespace to look: call it once per test.
std::set<std::string> new_netns_links(const std::set<std::string>& plus = {});

// A temporary directory, removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "strait-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The whole content of a file ("" when it cannot be read: a test compares it).
std::string read_file(const std::string& path);

// A process for a test to start in the background and watch, signal or kill (fork + exec).
struct Background {
  std::vector<std::string> argv;  // argv[0]: the program's path
  // "K=V" each; unset: this process's environment.
  std::optional<std::vector<std::string>> env;
  std::string input = "/dev/null";
  std::string output = "/dev/null";  // stdout and stderr
  bool append = false;               // to `output`, else truncated
  int netns_fd = -1;                 // a network namespace the child enters first
};
// Its pid; the child exits 126 when it cannot enter the netns, 127 when it cannot exec.
pid_t spawn_background(const Background& b);

// Path of a built executable: bin("macvlan") is <build>/bin/macvlan; test_bin() holds
// test-only fixtures (echo-plugin).
std::string bin(std::string_view name);
std::string test_bin(std::string_view name);
std::string fixture(std::string_view relative);

struct PluginRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  nlohmann::json json() const;  // stdout parsed; throws if it is not JSON
};

// The CNI_* environment of one call; CNI_PATH defaults to the build's bin directory.
cni::EnvMap plugin_env(std::string_view command, std::string_view container_id,
                       std::string_view netns, std::string_view ifname,
                       std::string_view cni_args = "");

// Runs `binary` with exactly `env` and `input` on stdin. With a non-empty `host_netns` it
// runs inside that namespace (ip netns exec), which then is the plugin's "host".
PluginRun run_plugin(const std::string& binary, const cni::EnvMap& env, std::string_view input,
                     const std::string& host_netns = "");

}  // namespace strait::test
