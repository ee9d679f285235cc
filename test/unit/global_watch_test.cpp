// KvStore::watch on the memory store and the file store (inotify): wakes on writes under the
// prefixes only, coalesces bursts, interruptible (also from a signal handler), and (memory
// store) reports kResync after the store was unreachable. The etcd watch and a write by
// another process are integration tests (test/integration/global_watch_test.cpp).
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "ipam/global/file_store.h"
#include "libcni/core/error.h"
#include "test/support/memory_store.h"
#include "test/support/temp_dir.h"

using ipam::KvWatch;
using Event = ipam::KvWatch::Event;
using namespace std::chrono_literals;

namespace {

// Long enough never to be reached when a wake-up is due (the assertions are about which
// answer comes, not when); short where "nothing comes" is the expected answer.
constexpr auto kDue = 10s;
constexpr auto kQuiet = 200ms;

// The contract on any store: `s` is empty and watched under blocks/ and nodes/.
void check_contract(ipam::KvStore& s) {
  auto w = s.watch({"blocks/", "nodes/"});
  CHECK(w->wait(kQuiet) == Event::kTimeout);
  REQUIRE(s.put_if("blocks/p/10.0.0.0-27", "b1", 0));  // a directory new to the file store
  CHECK(w->wait(kDue) == Event::kChanged);
  CHECK(w->wait(kQuiet) == Event::kTimeout);
  auto n1 = s.put_if("nodes/n1", "n", 0);
  REQUIRE(n1);
  CHECK(w->wait(kDue) == Event::kChanged);
  // Not watched: nothing.
  REQUIRE(s.put_if("handles/net/c1/eth0", "h", 0));
  REQUIRE(s.put_if("blocksx", "not under blocks/", 0));
  CHECK(w->wait(kQuiet) == Event::kTimeout);
  // A burst is one wake-up (or a few), never lost: the last write is seen by the last one.
  auto rev = s.get("blocks/p/10.0.0.0-27")->revision;
  for (int i = 0; i < 20; ++i)
    rev = *s.put_if("blocks/p/10.0.0.0-27", "b" + std::to_string(i), rev);
  CHECK(w->wait(kDue) == Event::kChanged);
  while (w->wait(kQuiet) == Event::kChanged) {
  }
  // A delete is a change.
  REQUIRE(s.erase_if("nodes/n1", *n1));
  CHECK(w->wait(kDue) == Event::kChanged);
  // interrupt() before or during a wait.
  w->interrupt();
  CHECK(w->wait(kDue) == Event::kInterrupted);
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    w->interrupt();
  });
  CHECK(w->wait(kDue) == Event::kInterrupted);
  t.join();
  CHECK(w->wait(kQuiet) == Event::kTimeout);
}

KvWatch* g_watch = nullptr;  // for the signal handler only
void on_signal(int) { g_watch->interrupt(); }

}  // namespace

TEST_CASE("watch: memory store", "[global-ipam][watch]") {
  ipam::MemoryStore s;
  check_contract(s);
  // Unreachable: wait() throws; reachable again: kResync first, then changes as usual.
  auto w = s.watch({"blocks/"});
  s.set_unreachable(true);
  try {
    w->wait(kQuiet);
    FAIL("no error");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrTryAgainLater);
  }
  s.set_unreachable(false);
  CHECK(w->wait(kQuiet) == Event::kResync);
  REQUIRE(s.put_if("blocks/p/x", "v", 0));
  CHECK(w->wait(kDue) == Event::kChanged);
}

TEST_CASE("watch: file store (inotify)", "[global-ipam][watch]") {
  strait::unit::TmpDir d;
  ipam::FileStore s(d.path() + "/store", 5000ms);
  check_contract(s);
  // A directory made and filled before the watch saw it is still a change: a second store
  // (another writer) puts a key into a pool directory that does not exist yet.
  auto w = s.watch({"blocks/"});
  ipam::FileStore other(d.path() + "/store", 5000ms);
  REQUIRE(other.put_if("blocks/q/10.1.0.0-27", "b", 0));
  CHECK(w->wait(kDue) == Event::kChanged);
  CHECK_THROWS_AS(s.watch({"blocks"}), std::invalid_argument);
  CHECK_THROWS_AS(s.watch({".tmp/"}), std::invalid_argument);
}

TEST_CASE("watch: interrupt() from a signal handler", "[global-ipam][watch]") {
  strait::unit::TmpDir d;
  ipam::FileStore s(d.path(), 5000ms);
  auto w = s.watch({"nodes/"});
  g_watch = w.get();
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
  std::thread t([] {
    std::this_thread::sleep_for(50ms);
    kill(getpid(), SIGUSR1);
  });
  CHECK(w->wait(kDue) == Event::kInterrupted);
  t.join();
  sigaction(SIGUSR1, &old, nullptr);
  g_watch = nullptr;
}
