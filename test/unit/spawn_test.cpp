#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "libcni/core/error.h"
#include "libcni/process/invoke.h"
#include "test/support/temp_dir.h"

// cni::spawn with children that misbehave. Timeouts here are short bounds that prove a bound
// exists; nothing asserts how fast anything is.
namespace {

using namespace std::chrono_literals;

cni::SpawnOptions within(std::chrono::milliseconds t) { return {.timeout = t}; }

}  // namespace

TEST_CASE("spawn: a child that floods stdout and stderr without reading stdin", "[spawn]") {
  // Far more than a pipe holds, each way: spawn must drain while its writes would block.
  const std::string input(3 << 20, 'x');
  cni::ExecResult r = cni::spawn(
      {"/bin/sh", "-c", "head -c 2000000 /dev/zero; head -c 1000000 /dev/zero >&2; exit 3"}, {},
      input, within(60s));
  CHECK(r.exit_code == 3);
  CHECK(r.out.size() == 2000000);
  CHECK(r.err.size() == 1000000);
  CHECK_FALSE(r.timed_out_after);
  // And one that reads it all back.
  r = cni::spawn({"/bin/cat"}, {}, input);
  CHECK(r.exit_code == 0);
  CHECK(r.out == input);
}

TEST_CASE("spawn: a child that never exits is killed at the timeout", "[spawn]") {
  SECTION("it keeps its output open") {
    cni::ExecResult r = cni::spawn({"/bin/sleep", "1000"}, {}, "", within(200ms));
    CHECK(r.timed_out_after == std::chrono::milliseconds(200));
    CHECK(r.exit_code == 128 + SIGKILL);
  }
  SECTION("it closed its output and goes on running") {
    cni::ExecResult r =
        cni::spawn({"/bin/sh", "-c", "exec >&- 2>&-; exec sleep 1000"}, {}, "", within(200ms));
    CHECK(r.timed_out_after);
    CHECK(r.exit_code == 128 + SIGKILL);
  }
  SECTION("a grandchild holds its output after it is killed") {
    cni::ExecResult r = cni::spawn({"/bin/sh", "-c", "sleep 1000 & echo $!; exec sleep 1000"}, {},
                                   "", within(200ms));
    CHECK(r.timed_out_after);
    CHECK(r.exit_code == 128 + SIGKILL);
    // spawn returned although the orphan still holds the pipe; end it.
    const int orphan = std::stoi(r.out);
    REQUIRE(orphan > 1);
    CHECK(kill(orphan, SIGKILL) == 0);
  }
  SECTION("without a timeout a quick child is unaffected") {
    cni::ExecResult r = cni::spawn({"/bin/sh", "-c", "echo hi; echo err >&2"}, {}, "");
    CHECK(r.exit_code == 0);
    CHECK(r.out == "hi\n");
    CHECK(r.err == "err\n");
    CHECK_FALSE(r.timed_out_after);
  }
}

TEST_CASE("spawn: a child killed by a signal reports 128 + signal", "[spawn]") {
  cni::ExecResult r = cni::spawn({"/bin/sh", "-c", "kill -TERM $$"}, {}, "", within(60s));
  CHECK(r.exit_code == 128 + SIGTERM);
  CHECK_FALSE(r.timed_out_after);
  CHECK_THROWS_WITH(cni::spawn({"/nonexistent/plugin"}, {}, ""),
                    "failed to execute \"/nonexistent/plugin\": No such file or directory");
}

TEST_CASE("delegate timeout: 60 s unless STRAIT_DELEGATE_TIMEOUT says otherwise", "[spawn]") {
  CHECK(cni::delegate_timeout({}) == std::chrono::seconds(60));
  CHECK(cni::delegate_timeout({{"STRAIT_DELEGATE_TIMEOUT", "5"}}) == std::chrono::seconds(5));
  CHECK(cni::delegate_timeout({{"STRAIT_DELEGATE_TIMEOUT", "3600"}}) == std::chrono::hours(1));
  for (const char* bad : {"", "0", "-1", "3601", "5s", " 5", "1e3", "99999999999"}) {
    CAPTURE(bad);
    try {
      cni::delegate_timeout({{"STRAIT_DELEGATE_TIMEOUT", bad}});
      FAIL("accepted");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrInvalidEnv);
      CHECK(e.msg() == "STRAIT_DELEGATE_TIMEOUT: \"" + std::string(bad) +
                           "\" is not a whole number of seconds from 1 to 3600");
    }
  }
}

TEST_CASE("invoke_plugin names a delegate killed at the timeout", "[spawn]") {
  strait::unit::TmpDir dir;
  const std::string plugin = dir.path() + "/sleepy-ipam";
  std::ofstream(plugin) << "#!/bin/sh\nexec sleep 1000\n";
  std::filesystem::permissions(plugin, std::filesystem::perms::owner_all);
  cni::SpawnRunner runner(within(300ms));
  try {
    cni::invoke_plugin(runner, "sleepy-ipam", {dir.path()}, "ADD", {}, "{}");
    FAIL("no error");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInternal);
    CHECK(e.msg() ==
          "plugin \"sleepy-ipam\" did not finish within 300 ms and was killed "
          "(STRAIT_DELEGATE_TIMEOUT sets the limit)");
  }
}

TEST_CASE("spawn_start: the child runs while the caller goes on, finish() collects it", "[spawn]") {
  strait::unit::TmpDir dir;
  const std::string fifo = dir.path() + "/go";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  // The child waits for a line on the FIFO before it reads stdin: opening the FIFO for writing
  // below returns only once the child has opened it, so spawn_start must have returned with
  // the child still running (were it to wait for the child, this test would hang).
  auto started =
      cni::spawn_start({"/bin/sh", "-c", "read line < \"$0\"; echo \"$line\"; cat", fifo}, {},
                       "the input", within(60s));
  std::ofstream(fifo) << "go\n";
  const cni::ExecResult r = started->finish();
  CHECK(r.exit_code == 0);
  CHECK(r.out == "go\nthe input");
  CHECK_FALSE(r.timed_out_after);
}

TEST_CASE("spawn_start: more stdin than a pipe holds is fed by finish()", "[spawn]") {
  const std::string input(3 << 20, 'y');
  auto started = cni::spawn_start({"/bin/cat"}, {}, input);
  const cni::ExecResult r = started->finish();
  CHECK(r.exit_code == 0);
  CHECK(r.out == input);
}

TEST_CASE("spawn_start: a run dropped unfinished is killed and reaped", "[spawn]") {
  strait::unit::TmpDir dir;
  const std::string pid_file = dir.path() + "/pid";
  auto started = cni::spawn_start(
      {"/bin/sh", "-c", "echo $$ > \"$0.tmp\"; mv \"$0.tmp\" \"$0\"; exec sleep 1000", pid_file},
      {}, "");
  pid_t pid = 0;
  for (int i = 0; i < 10000 && pid == 0; ++i) {
    std::ifstream in(pid_file);
    if (!(in >> pid)) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(pid > 1);
  CHECK(kill(pid, 0) == 0);
  started.reset();
  // Killed and reaped: not even a zombie is left to signal.
  CHECK(kill(pid, 0) == -1);
  CHECK(errno == ESRCH);
}

TEST_CASE("spawn_start: the child runs off the caller's CPU for a while, then on all of them",
          "[spawn]") {
  cpu_set_t mine;
  REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
  const int n = CPU_COUNT(&mine);
  strait::unit::TmpDir dir;
  const std::string pid_file = dir.path() + "/pid", fifo = dir.path() + "/go";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  auto started = cni::spawn_start(
      {"/bin/sh", "-c", "echo $$ > \"$0.tmp\"; mv \"$0.tmp\" \"$0\"; read line < \"$1\"", pid_file,
       fifo},
      {}, "", within(60s));
  pid_t pid = 0;
  for (int i = 0; i < 10000 && pid == 0; ++i) {
    std::ifstream in(pid_file);
    if (!(in >> pid)) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(pid > 1);
  auto allowed = [pid] {
    cpu_set_t set;
    return sched_getaffinity(pid, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
  };
  // Every CPU of ours but one (ours when it started the child), when we have more than one.
  CHECK(allowed() == (n >= 2 ? n - 1 : n));
  // However long it takes to get here: the child gets all of ours back only while finish()
  // waits for it (5 ms into its life). It exits once told to,
  // and it is told once it has them (or after 10 s, to fail rather than hang).
  bool restored = false;
  std::thread opener([&] {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(restored = allowed() == n) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    std::ofstream(fifo) << "go\n";
  });
  const cni::ExecResult r = started->finish();
  opener.join();
  CHECK(restored);
  CHECK(r.exit_code == 0);
}
