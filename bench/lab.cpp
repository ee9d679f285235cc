#include "bench/lab.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "libcni/process/invoke.h"

namespace strait::bench {

const std::string& ip_binary() {
  static const std::string path = [] {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
      if (access(p, X_OK) == 0) return std::string(p);
    }
    throw std::runtime_error("iproute2's ip not found (run scripts/setup)");
  }();
  return path;
}

std::string run_checked(const std::vector<std::string>& argv) {
  cni::ExecResult r = cni::spawn(argv, {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw std::runtime_error("`" + cmd + "` failed (exit status " + std::to_string(r.exit_code) +
                             "): " + r.err + r.out);
  }
  return r.out;
}

Lab::Lab(std::string prefix, int pods) : host_(prefix + "-host"), peer_(prefix + "-peer") {
  for (int i = 0; i < pods; ++i) pods_.push_back(prefix + "-pod" + std::to_string(i));
  try {
    add_netns(host_);
    add_netns(peer_);
    for (const auto& p : pods_) add_netns(p);
    const std::string& ip = ip_binary();
    run_checked({ip, "-n", host_, "link", "add", kMaster, "type", "veth", "peer", "name", "uplink",
                 "netns", peer_});
    run_checked({ip, "-n", host_, "link", "set", kMaster, "up"});
    run_checked({ip, "-n", peer_, "addr", "add", "192.0.2.1/24", "dev", "uplink"});
    run_checked({ip, "-n", peer_, "link", "set", "uplink", "up"});
  } catch (...) {
    teardown();
    throw;
  }
}

void Lab::add_netns(const std::string& name) {
  run_checked({ip_binary(), "netns", "add", name});
  created_.push_back(name);
  run_checked({ip_binary(), "-n", name, "link", "set", "lo", "up"});
}

Lab::~Lab() { teardown(); }

void Lab::teardown() {
  // Pods first, the host (and with it eth1 and the peer's uplink) last.
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    try {
      run_checked({ip_binary(), "netns", "delete", *it});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "strait-bench: cleanup: %s\n", e.what());
    }
  }
  created_.clear();
}

WorkDir::WorkDir(const std::string& given) {
  if (!given.empty()) {
    path_ = given;
    std::filesystem::create_directories(path_);
    return;
  }
  std::string tmpl = "/tmp/strait-bench.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "failed to create a temp dir");
  }
  path_ = tmpl;
  owned_ = true;
}

WorkDir::~WorkDir() {
  if (!owned_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec)
    std::fprintf(stderr, "strait-bench: cleanup of %s: %s\n", path_.c_str(), ec.message().c_str());
}

}  // namespace strait::bench
