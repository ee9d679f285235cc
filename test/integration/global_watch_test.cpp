// KvStore::watch as the overlay route agents use it: a file store written by another process
// (inotify), etcd written by another client, etcd restarted (unreachable is reported, then
// kResync), the watched member of three killed or frozen (failover, kResync). etcd runs on
// 127.0.0.1 (test/support/etcd_fixture.h); stores live in temp directories.
#include <signal.h>

#include <chrono>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/etcd_store.h"
#include "ipam/global/file_store.h"
#include "libcni/core/error.h"
#include "libcni/process/invoke.h"
#include "test/support/etcd_fixture.h"
#include "test/support/harness.h"

namespace {

using Event = ipam::KvWatch::Event;
using nlohmann::json;
using strait::test::bin;
using strait::test::EtcdCluster;
using strait::test::plugin_env;
using strait::test::run_plugin;
using strait::test::TempDir;
using namespace std::chrono_literals;

// Never reached when a wake-up is due (what is checked is which answer comes); short where
// nothing is expected.
constexpr auto kDue = 20s;
constexpr auto kQuiet = 300ms;

json ipam_conf(const json& store, const std::string& locks) {
  return {{"cniVersion", "1.1.0"},
          {"name", "watchnet"},
          {"type", "global-ipam"},
          {"ipam",
           {{"type", "global-ipam"},
            {"pools", {{{"name", "p"}, {"cidr", "10.130.0.0/20"}}}},
            {"store", store},
            {"nodeLockDir", locks}}}};
}

cni::EnvMap env_for(const std::string& command, const std::string& id) {
  cni::EnvMap env = plugin_env(command, id, "/run/netns/unused", "eth0");
  env["K8S_NODE_NAME"] = "node-w";
  return env;
}

// Waits until `w` reports `want`, passing over kChanged wake-ups (a write may come as several);
// what it returned last.
Event until(ipam::KvWatch& w, Event want) {
  Event e;
  do {
    e = w.wait(kDue);
  } while (e == Event::kChanged && want != Event::kChanged);
  return e;
}

}  // namespace

TEST_CASE("watch: the file store wakes on another process's ADD and set-node",
          "[global-ipam][watch]") {
  TempDir dir("strait-gwatch");
  TempDir locks("strait-gwatch-locks");
  ipam::FileStore store(dir.path(), 5000ms);
  auto w = store.watch({"blocks/", "nodes/"});
  CHECK(w->wait(kQuiet) == Event::kTimeout);
  auto r = run_plugin(bin("global-ipam"), env_for("ADD", "c1"),
                      ipam_conf({{"type", "file"}, {"path", dir.path()}}, locks.path()).dump());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(w->wait(kDue) == Event::kChanged);
  while (w->wait(kQuiet) == Event::kChanged) {
  }
  auto s = cni::spawn({bin("global-ipam"), "--store-path", dir.path(), "set-node", "node-w",
                       "--address", "198.51.100.3"},
                      {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
  REQUIRE(s.exit_code == 0);
  CHECK(w->wait(kDue) == Event::kChanged);
}

TEST_CASE("watch: etcd wakes on another client's writes under its prefixes only",
          "[global-ipam][watch][etcd]") {
  EtcdCluster etcd;
  ipam::EtcdStore store(etcd.options());
  auto w = store.watch({"blocks/", "nodes/"});
  ipam::EtcdStore other(etcd.options());
  REQUIRE(other.put_if("handles/n/c/eth0", "h", 0));
  REQUIRE(other.put_if("blocksx/y", "v", 0));
  ipam::EtcdStore elsewhere(etcd.options("/another-prefix"));
  REQUIRE(elsewhere.put_if("blocks/p/x", "v", 0));
  CHECK(w->wait(kQuiet) == Event::kTimeout);
  REQUIRE(other.put_if("nodes/n1", "n", 0));
  CHECK(w->wait(kDue) == Event::kChanged);
  // Through the executable: an ADD writes a block.
  TempDir locks("strait-gwatch-locks");
  json s = {{"type", "etcd"}, {"endpoints", etcd.endpoints()}, {"prefix", "/strait-test"}};
  auto r = run_plugin(bin("global-ipam"), env_for("ADD", "c1"), ipam_conf(s, locks.path()).dump());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(w->wait(kDue) == Event::kChanged);
  w->interrupt();
  CHECK(until(*w, Event::kInterrupted) == Event::kInterrupted);
}

TEST_CASE("watch: etcd restarted: unreachable is reported, then kResync, nothing lost",
          "[global-ipam][watch][etcd]") {
  EtcdCluster etcd;
  ipam::EtcdStore store(etcd.options("/strait-test", 1000ms));
  auto w = store.watch({"blocks/"});
  etcd.stop(0);
  // The stream breaks and no member answers within the store's timeout: the caller hears it.
  try {
    until(*w, Event::kTimeout);
    FAIL("a watch on a stopped etcd did not say so");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrTryAgainLater);
  }
  etcd.start(0);
  etcd.wait_ready();
  // A write while the watch is down: the first answer after the reconnect is kResync, so
  // the caller re-reads and sees it.
  ipam::EtcdStore other(etcd.options());
  REQUIRE(other.put_if("blocks/p/while-down", "v", 0));
  CHECK(w->wait(kDue) == Event::kResync);
  REQUIRE(other.put_if("blocks/p/after", "v", 0));
  CHECK(w->wait(kDue) == Event::kChanged);
}

TEST_CASE("watch: etcd's watched member killed or frozen: the watch fails over, kResync",
          "[global-ipam][watch][etcd]") {
  EtcdCluster etcd(3);
  ipam::EtcdStore store(etcd.options());  // tries member 0 first
  ipam::EtcdOptions rest = etcd.options();
  rest.endpoints = {etcd.endpoint(1), etcd.endpoint(2)};
  ipam::EtcdStore other(rest);
  SECTION("killed") {
    auto w = store.watch({"blocks/"});
    etcd.stop(0, SIGKILL);
    REQUIRE(other.put_if("blocks/p/x", "v", 0));
    CHECK(until(*w, Event::kResync) == Event::kResync);
    REQUIRE(other.put_if("blocks/p/y", "v", 0));
    CHECK(w->wait(kDue) == Event::kChanged);
  }
  SECTION("frozen: its connections stay up, the probe after kProbeAfter finds it out") {
    auto w = store.watch({"blocks/"});
    etcd.freeze(0);
    REQUIRE(other.put_if("blocks/p/x", "v", 0));  // member 0 never tells
    CHECK(until(*w, Event::kResync) == Event::kResync);
    REQUIRE(other.put_if("blocks/p/y", "v", 0));
    CHECK(w->wait(kDue) == Event::kChanged);
    etcd.thaw(0);
  }
}
