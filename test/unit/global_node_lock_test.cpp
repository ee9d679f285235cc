// The node lock's queue: waiters served in arrival order; a waiter that gives up or dies,
// and a holder that dies, block nobody. Waiters are threads (flock is per open file, so they
// compete as processes do) and forked children where a death is needed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "ipam/global/node_lock.h"
#include "test/support/temp_dir.h"

namespace fs = std::filesystem;
using ipam::NodeLock;
using namespace std::chrono_literals;

namespace {

// Polls until `done` (a readiness wait; the bound only keeps a broken lock from hanging).
void eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST_CASE("node lock: waiters get it in the order they arrived", "[global-ipam][node-lock]") {
  strait::unit::TmpDir d;
  const std::string queue = d.path() + "/n1.queue";
  auto holder = NodeLock::acquire(d.path(), "n1", 10s);
  REQUIRE(holder.held());
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> waiters;
  constexpr int kWaiters = 6;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      auto l = NodeLock::acquire(d.path(), "n1", 30s);
      CHECK(l.held());
      std::lock_guard lock(mu);
      order.push_back(i);
    });
    // Waiter i has its ticket (i + 2: the holder has 1) before the next one arrives.
    eventually([&] { return fs::exists(queue + "/" + std::to_string(i + 2)); });
  }
  holder = NodeLock();
  for (auto& t : waiters) t.join();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
  // Every ticket went with its waiter.
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(queue)) left.push_back(e.path().filename());
  CHECK(left == std::vector<std::string>{"tail"});
}

TEST_CASE("node lock: a waiter that gives up or dies, or a holder that dies, blocks nobody",
          "[global-ipam][node-lock]") {
  strait::unit::TmpDir d;
  const std::string queue = d.path() + "/n1.queue";
  // A child holds the lock; a second child waits behind it; both are killed.
  auto child = [&](std::chrono::milliseconds wait) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto l = NodeLock::acquire(d.path(), "n1", wait);
      pause();  // holds (or waits) until killed
      _exit(l.held() ? 0 : 1);
    }
    return pid;
  };
  pid_t holder = child(10s);
  eventually([&] { return fs::exists(queue + "/1"); });
  pid_t waiter = child(60s);
  eventually([&] { return fs::exists(queue + "/2"); });
  // A waiter in this process that gives up: it must leave no ticket that others wait for.
  auto gave_up = NodeLock::acquire(d.path(), "n1", 20ms);
  CHECK_FALSE(gave_up.held());
  CHECK_FALSE(fs::exists(queue + "/3"));
  // And one that waits for them all.
  bool got = false;
  std::thread last([&] { got = NodeLock::acquire(d.path(), "n1", 30s).held(); });
  eventually([&] { return fs::exists(queue + "/4"); });
  kill(waiter, SIGKILL);  // dies while waiting: its ticket file stays, unlocked
  waitpid(waiter, nullptr, 0);
  kill(holder, SIGKILL);  // dies while holding
  waitpid(holder, nullptr, 0);
  last.join();
  CHECK(got);
  // The dead ones' tickets were tidied up by the waiter that passed them.
  CHECK_FALSE(fs::exists(queue + "/1"));
  CHECK_FALSE(fs::exists(queue + "/2"));
}

TEST_CASE("node lock: a release, or a waiter giving up, bumps its ticket's wake-up word",
          "[global-ipam][node-lock]") {
  strait::unit::TmpDir d;
  const std::string tail = d.path() + "/n1.queue/tail";
  // The word of ticket t: the t-th 32-bit counter after the tail's first page.
  auto word = [&](uint64_t t) {
    size_t page = std::max<size_t>(4096, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
    std::ifstream f(tail, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(page + t * sizeof(uint32_t)));
    uint32_t v = 0;
    REQUIRE(f.read(reinterpret_cast<char*>(&v), sizeof v));
    return v;
  };
  auto holder = NodeLock::acquire(d.path(), "n1", 10s);
  REQUIRE(holder.held());
  CHECK(word(1) == 0);
  auto gave_up = NodeLock::acquire(d.path(), "n1", 20ms);  // ticket 2
  CHECK_FALSE(gave_up.held());
  CHECK(word(2) == 1);  // its successors stop waiting for it at once
  CHECK(word(1) == 0);
  holder = NodeLock();
  CHECK(word(1) == 1);
  // The next ticket (3) waits for nobody and wakes whoever waits behind it on release.
  auto next = NodeLock::acquire(d.path(), "n1", 10s);
  REQUIRE(next.held());
  next = NodeLock();
  CHECK(word(3) == 1);
}
