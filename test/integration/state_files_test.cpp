#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"

// host-local's state is readable by root only: every directory it creates is 0700 and every
// file 0600, whatever the runtime's umask (run here with umask 0, the worst case), and
// nothing is created outside <dataDir>/<network>/ except the missing parents of dataDir.
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::run_plugin;
using strait::test::TempDir;
using strait::test::unique_name;

// Restores the umask on every path out of the test.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(umask(m)) {}
  ~UmaskGuard() { umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("host-local state files are 0600 and its directories 0700, even with umask 0",
          "[hygiene][host-local]") {
  TempDir root{"strait-modes"};
  const fs::path data_dir = fs::path(root.path()) / "a" / "b";
  const std::string network = unique_name("modenet", 40);
  const json conf = {{"cniVersion", "1.1.0"},
                     {"name", network},
                     {"type", "macvlan"},
                     {"ipam",
                      {{"type", "host-local"},
                       {"dataDir", data_dir.string()},
                       {"ranges", json::array({json::array({{{"subnet", "192.0.2.0/24"}}}),
                                               json::array({{{"subnet", "2001:db8::/64"}}})})}}}};
  {
    UmaskGuard umask0(0);
    for (const char* cid : {"modes-a", "modes-b"}) {
      PluginRun r = run_plugin(bin("host-local"),
                               plugin_env("ADD", cid, "/run/netns/unused", "net1"), conf.dump());
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
    }
  }
  size_t files = 0, dirs = 0;
  for (const auto& e : fs::recursive_directory_iterator(root.path())) {
    INFO(e.path());
    if (e.is_directory()) {
      CHECK(mode_of(e.path()) == 0700);
      ++dirs;
    } else {
      CHECK(e.is_regular_file());
      CHECK(mode_of(e.path()) == 0600);
      ++files;
    }
  }
  // a, a/b, a/b/<network>, .strait; 4 leases, 2 last_reserved_ip, lock, 2 index entries, stamp.
  CHECK(dirs == 4);
  CHECK(files >= 9);
  // Nothing but the lease directory under dataDir.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(data_dir)) {
    CHECK(e.path().filename() == network);
    ++entries;
  }
  CHECK(entries == 1);
}
