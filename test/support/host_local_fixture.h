#pragma once

// Shared by the host-local unit tests: a temporary data directory, file helpers, and calls of
// the verbs in-process with a parsed config, as skel would make them.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/skel.h"
#include "libcni/protocol/version.h"
#include "plugins/host-local/host_local.h"
#include "test/support/temp_dir.h"

namespace host_local_test {

namespace fs = std::filesystem;
using nlohmann::json;

using TmpDir = strait::unit::TmpDir;

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void put(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  REQUIRE(f.good());
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

inline unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Regular files directly in `dir`, sorted (the lease directory's top level).
inline std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class NoExec : public cni::ExecRunner {
 public:
  cni::ExecResult run(const std::string& path, const cni::EnvMap&, std::string_view) override {
    FAIL("host-local must not exec anything, tried " << path);
    return {};
  }
};

// One verb call: env and config parsed as skel does, then the verb called directly.
struct Call {
  std::string command = "ADD";
  std::string container_id = "c1";
  std::string ifname = "eth0";
  std::string cni_args;

  template <class Fn>
  auto with_args(const json& conf, Fn fn) const {
    cni::EnvMap env = {
        {"CNI_COMMAND", command}, {"CNI_NETNS", "/run/netns/none"}, {"CNI_PATH", "/nonexistent"}};
    if (!container_id.empty()) env["CNI_CONTAINERID"] = container_id;
    if (!ifname.empty()) env["CNI_IFNAME"] = ifname;
    if (!cni_args.empty()) env["CNI_ARGS"] = cni_args;
    std::string input = conf.dump();
    cni::Env e = cni::parse_env(env);
    cni::NetConf c = cni::parse_netconf(input, cni::supported_versions());
    std::ostringstream logs;
    cni::Logger log(logs, cni::Logger::Level::kDebug);
    NoExec exec;
    cni::CmdArgs args{e, c, input, env, log, exec};
    return fn(args);
  }
};

inline cni::Result add(const json& conf, const std::string& id, const std::string& ifname = "eth0",
                       const std::string& cni_args = "") {
  Call c{"ADD", id, ifname, cni_args};
  return c.with_args(conf, [](const cni::CmdArgs& a) { return host_local::cmd_add(a); });
}

inline void del(const json& conf, const std::string& id, const std::string& ifname = "eth0") {
  Call c{"DEL", id, ifname, ""};
  c.with_args(conf, [](const cni::CmdArgs& a) { host_local::cmd_del(a); });
}

inline void check(const json& conf, const std::string& id, const std::string& ifname = "eth0") {
  Call c{"CHECK", id, ifname, ""};
  c.with_args(conf, [](const cni::CmdArgs& a) { host_local::cmd_check(a); });
}

inline void gc(const json& conf) {
  Call c{"GC", "", "", ""};
  c.with_args(conf,
              [](const cni::CmdArgs& a) { host_local::cmd_gc(a, cni::valid_attachments(a.conf)); });
}

inline void status(const json& conf) {
  Call c{"STATUS", "", "", ""};
  c.with_args(conf, [](const cni::CmdArgs& a) { host_local::cmd_status(a); });
}

// The cni::Error `fn` throws; fails the test when it throws nothing or something else.
inline cni::Error error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const cni::Error& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL("expected cni::Error, got " << e.what());
  }
  FAIL("expected cni::Error, nothing was thrown");
  return cni::Error(0, "");
}

inline std::string addr(const cni::Result& r, size_t i) { return r.ips.at(i).address.str(); }

}  // namespace host_local_test
