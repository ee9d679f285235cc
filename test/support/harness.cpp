#include "test/support/harness.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "libcni/process/invoke.h"

namespace strait::test {

std::string unique_name(std::string_view prefix, size_t max_len) {
  static std::atomic<unsigned> counter{0};
  std::string suffix = std::to_string(getpid() % 100000) + "x" + std::to_string(counter++);
  std::string p(prefix);
  if (p.size() + suffix.size() > max_len)
    p.resize(max_len > suffix.size() ? max_len - suffix.size() : 0);
  return p + suffix;
}

int sh(const std::string& cmd, std::string* out) {
  std::string full = "(" + cmd + ") 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for: " + cmd);
  std::array<char, 4096> buf;
  std::string text;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), n);
  int status = pclose(pipe);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string sh_ok(const std::string& cmd) {
  std::string out;
  int rc = sh(cmd, &out);
  if (rc != 0) {
    throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd + "\n" + out);
  }
  return out;
}

std::string inspect(const std::string& cmd) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::string out = sh_ok(cmd);
    if (out.find("Dump was interrupted") == std::string::npos) return out;
  }
  throw std::runtime_error("every dump was interrupted (50 tries): " + cmd);
}

TempNetns::TempNetns(std::string_view prefix)
    : name_(unique_name(std::string("strait-") + std::string(prefix), 40)) {
  sh_ok("ip netns add " + name_);
  sh_ok("ip netns exec " + name_ + " ip link set lo up");
}

TempNetns::~TempNetns() { remove(); }

void TempNetns::remove() {
  if (!alive_) return;
  alive_ = false;
  sh("ip netns delete " + name_);
}

std::string TempNetns::exec(const std::string& cmd) const {
  return sh_ok("ip netns exec " + name_ + " sh -c '" + cmd + "'");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> TempNetns::links() const {
  std::set<std::string> out;
  std::istringstream in(
      sh_ok("ip -n " + name_ + " -o link show 2>/dev/null | cut -d: -f2 | cut -d@ -f1"));
  for (std::string l; std::getline(in, l);) {
    l.erase(0, l.find_first_not_of(' '));
    if (!l.empty()) out.insert(l);
  }
  return out;
}

std::set<std::string> new_netns_links(const std::set<std::string>& plus) {
  std::set<std::string> out = TempNetns("fresh").links();
  out.insert(plus.begin(), plus.end());
  return out;
}

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string bin(std::string_view name) {
  return std::string(STRAIT_BIN_DIR) + "/" + std::string(name);
}
std::string test_bin(std::string_view name) {
  return std::string(STRAIT_TEST_BIN_DIR) + "/" + std::string(name);
}
std::string fixture(std::string_view relative) {
  return std::string(STRAIT_FIXTURES_DIR) + "/" + std::string(relative);
}

nlohmann::json PluginRun::json() const { return nlohmann::json::parse(out); }

cni::EnvMap plugin_env(std::string_view command, std::string_view container_id,
                       std::string_view netns, std::string_view ifname, std::string_view cni_args) {
  cni::EnvMap env;
  env["CNI_COMMAND"] = std::string(command);
  if (!container_id.empty()) env["CNI_CONTAINERID"] = std::string(container_id);
  if (!netns.empty()) env["CNI_NETNS"] = std::string(netns);
  if (!ifname.empty()) env["CNI_IFNAME"] = std::string(ifname);
  if (!cni_args.empty()) env["CNI_ARGS"] = std::string(cni_args);
  env["CNI_PATH"] = STRAIT_BIN_DIR;
  env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
  return env;
}

PluginRun run_plugin(const std::string& binary, const cni::EnvMap& env, std::string_view input,
                     const std::string& host_netns) {
  std::vector<std::string> argv = {binary};
  // `ip netns exec` keeps the environment it is given and also remounts /sys for the netns.
  if (!host_netns.empty()) argv = {"/usr/bin/ip", "netns", "exec", host_netns, binary};
  cni::ExecResult r = cni::spawn(argv, env, input);
  return {r.exit_code, r.out, r.err};
}

pid_t spawn_background(const Background& b) {
  // Everything the child needs is made before fork: it only calls async-signal-safe functions.
  std::vector<std::string> args = b.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envs = b.env.value_or(std::vector<std::string>{});
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int flags = O_WRONLY | O_CREAT | (b.append ? O_APPEND : O_TRUNC);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid > 0) return pid;
  if (b.netns_fd >= 0 && setns(b.netns_fd, CLONE_NEWNET) != 0) _exit(126);
  const int in = open(b.input.c_str(), O_RDONLY);
  const int out = open(b.output.c_str(), flags, 0600);
  if (in < 0 || out < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  if (b.env) {
    execve(argv[0], argv.data(), envp.data());
  } else {
    execv(argv[0], argv.data());
  }
  _exit(127);
}

}  // namespace strait::test
