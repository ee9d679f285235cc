#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/config.h"
#include "ipam/global/file_store.h"
#include "libcni/core/error.h"
#include "libcni/core/fd.h"
#include "test/support/temp_dir.h"

namespace fs = std::filesystem;
using ipam::FileStore;
using namespace std::chrono_literals;

namespace {

using Dir = strait::unit::TmpDir;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("file store: compare-and-swap on one key", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path() + "/store", 1000ms);
  CHECK(fs::is_directory(d.path() + "/store"));
  CHECK_FALSE(s.get("blocks/p/10.0.0.0-27"));
  auto r1 = s.put_if("blocks/p/10.0.0.0-27", R"({"a":1})", 0);
  REQUIRE(r1);
  CHECK_FALSE(s.put_if("blocks/p/10.0.0.0-27", "x", 0));  // exists
  auto e = s.get("blocks/p/10.0.0.0-27");
  REQUIRE(e);
  CHECK(e->value == R"({"a":1})");
  CHECK(e->revision == *r1);
  // The file holds the revision and the value; the key is its path.
  CHECK(slurp(d.path() + "/store/blocks/p/10.0.0.0-27") == std::to_string(*r1) + "\n{\"a\":1}");
  CHECK_FALSE(s.put_if("blocks/p/10.0.0.0-27", "x", *r1 - 1));  // stale
  auto r2 = s.put_if("blocks/p/10.0.0.0-27", "v2", *r1);
  REQUIRE(r2);
  CHECK(*r2 > *r1);
  CHECK(s.get("blocks/p/10.0.0.0-27")->value == "v2");
  // Delete, then create again: the new revision is later than any before.
  CHECK_FALSE(s.erase_if("blocks/p/10.0.0.0-27", *r1));
  CHECK(s.erase_if("blocks/p/10.0.0.0-27", *r2));
  CHECK_FALSE(s.get("blocks/p/10.0.0.0-27"));
  CHECK_FALSE(s.erase_if("blocks/p/10.0.0.0-27", *r2));
  auto r3 = s.put_if("blocks/p/10.0.0.0-27", "v3", 0);
  REQUIRE(r3);
  CHECK(*r3 > *r2);
  CHECK_FALSE(s.put_if("blocks/p/10.0.0.0-27", "stale", *r2));
  // No temporary file left behind.
  CHECK(fs::is_empty(d.path() + "/store/.tmp"));
}

TEST_CASE("file store: list by prefix, sorted, deleted keys tidy up", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 1000ms);
  for (const char* k : {"handles/net/c2/eth0", "handles/net/c1/eth1", "handles/net/c1/eth0",
                        "handles/other/c1/eth0", "nodes/n1"}) {
    REQUIRE(s.put_if(k, std::string("v:") + k, 0));
  }
  auto l = s.list("handles/net/");
  REQUIRE(l.size() == 3);
  CHECK(l[0].key == "handles/net/c1/eth0");
  CHECK(l[0].value == "v:handles/net/c1/eth0");
  CHECK(l[1].key == "handles/net/c1/eth1");
  CHECK(l[2].key == "handles/net/c2/eth0");
  auto keys = s.list("handles/", true);
  CHECK(keys.size() == 4);
  CHECK(keys[0].value.empty());
  CHECK(keys[0].revision > 0);
  CHECK(s.list("").size() == 5);  // .locks and .tmp are not keys
  CHECK(s.list("nothing/").empty());
  CHECK_THROWS_AS(s.list("handles"), std::invalid_argument);

  // Removing the last key of a container removes its directories.
  auto e = s.get("handles/net/c2/eth0");
  REQUIRE(s.erase_if(e->key, e->revision));
  CHECK_FALSE(fs::exists(d.path() + "/handles/net/c2"));
  CHECK(fs::exists(d.path() + "/handles/net/c1"));
  // The key locks are shared files, made once and kept: no directory, no file per key.
  std::set<std::string> lock_files;
  for (const auto& entry : fs::directory_iterator(d.path() + "/.locks")) {
    CHECK(entry.is_regular_file());
    lock_files.insert(entry.path().string());
  }
  CHECK(lock_files.size() <= FileStore::kLockStripes);
  CHECK(lock_files.count(s.lock_file("handles/net/c2/eth0")) == 1);
  // And writing there again recreates them.
  REQUIRE(s.put_if("handles/net/c2/eth0", "again", 0));
  CHECK(s.get("handles/net/c2/eth0")->value == "again");
}

TEST_CASE("file store: batches are ordered, not atomic", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 1000ms);
  auto b = s.put_if("blocks/p/b", "b1", 0);
  REQUIRE(b);
  // The first write happens, the second's comparison fails: the caller orders writes so
  // that such a prefix is harmless (the handle intent before the block).
  CHECK_FALSE(s.put_all_if({{"handles/n/c/eth0", "intent", 0}, {"blocks/p/b", "b2", *b + 1}}));
  CHECK(s.get("handles/n/c/eth0")->value == "intent");
  CHECK(s.get("blocks/p/b")->value == "b1");
  auto h = s.get("handles/n/c/eth0");
  auto revs = s.put_all_if({{"handles/n/c/eth0", "h2", h->revision}, {"blocks/p/b", "b2", *b}});
  REQUIRE(revs);
  CHECK(s.get("blocks/p/b")->revision == (*revs)[1]);
  // Without transactions the fallback of put_all_if_or_read is the ordered batch, then the
  // reads; an erase goes by erase_if.
  CHECK_FALSE(s.transactions());
  auto blk = s.get("blocks/p/b");
  auto refused = s.put_all_if_or_read({{"blocks/p/b", "", blk->revision + 1, true}},
                                      {{"blocks/p/b"}, {"none/x"}});
  CHECK_FALSE(refused.revisions);
  REQUIRE(refused.reads.size() == 2);
  CHECK(refused.reads[0][0].value == "b2");
  REQUIRE(s.put_if("nodes/gone", "x", 0));
  auto gone = s.get("nodes/gone");
  auto erased = s.put_all_if({{"nodes/gone", "", gone->revision, true}});
  REQUIRE(erased);
  CHECK((*erased)[0] == 0);
  CHECK_FALSE(s.get("nodes/gone"));
  auto batch = s.read_batch({{"blocks/p/b"}, {"handles/", true, false}, {"none/x"}});
  REQUIRE(batch.size() == 3);
  CHECK(batch[0][0].value == "b2");
  CHECK(batch[1][0].value == "h2");
  CHECK(batch[1][0].key == "handles/n/c/eth0");
  CHECK(batch[2].empty());
}

TEST_CASE("file store: keys are validated", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 1000ms);
  for (const char* bad : {"", "a//b", "/a", "a/", "a/../b", "a/./b", "..", ".locks/x", ".tmp/x"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(s.put_if(bad, "x", 0), std::invalid_argument);
  }
  CHECK_THROWS_AS(s.get(std::string("a\0b", 3)), std::invalid_argument);
}

TEST_CASE("file store: a held lock times out with code 11", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 150ms);
  REQUIRE(s.put_if("nodes/n1", "v", 0));
  // Another process holds the key's lock (flock is per open file description: same here).
  CHECK(s.lock_file("nodes/n1") == d.path() + "/.locks/0a");  // a stable hash, pinned
  cni::UniqueFd fd(open(s.lock_file("nodes/n1").c_str(), O_RDWR | O_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(flock(fd.get(), LOCK_EX) == 0);
  // The behaviour, not the time (this also runs under sanitizers): the write gives up with
  // code 11 naming the key and the timeout, and leaves the key as it was.
  try {
    s.put_if("nodes/n1", "w", s.get("nodes/n1")->revision);
    FAIL("no timeout");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrTryAgainLater);
    CHECK(e.msg() ==
          "timed out after 150 ms waiting for the lock of nodes/n1 in file store " + d.path());
  }
  CHECK(s.get("nodes/n1")->value == "v");  // nothing changed
  // Keys on other lock files are not locked by it: no global lock.
  REQUIRE(s.lock_file("nodes/n2") != s.lock_file("nodes/n1"));
  CHECK(s.put_if("nodes/n2", "v", 0));
  // Readers take no lock.
  CHECK(s.get("nodes/n1"));
  // Once the holder lets go, the write goes through.
  fd.reset();
  CHECK(s.put_if("nodes/n1", "w", s.get("nodes/n1")->revision));
}

TEST_CASE("file store: a lock directory that cannot hold its lock file is an error, not a loop",
          "[global-ipam][file-store]") {
  Dir d;
  { REQUIRE(FileStore(d.path(), 100ms).put_if("nodes/n1", "v", 0)); }
  // The locks' directory .locks is a dangling symbolic link: mkdir says it exists, and
  // opening a file in it says ENOENT, however often the directory is made again.
  fs::remove_all(d.path() + "/.locks");
  fs::create_directory_symlink(d.path() + "/gone", d.path() + "/.locks");
  const std::string lock_file = FileStore(d.path(), 100ms).lock_file("handles/n/c/eth0");
  // In a child, so that a store that never gives up fails this test instead of hanging it.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      FileStore(d.path(), 100ms).put_if("handles/n/c/eth0", "v", 0);
      _exit(3);
    } catch (const std::system_error& e) {
      bool named = std::string(e.what()).find(lock_file) != std::string::npos;
      _exit(e.code().value() == ENOENT && named ? 0 : 4);
    } catch (...) {
      _exit(5);
    }
  }
  int status = 0;
  for (int i = 0; i < 600 && waitpid(pid, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL("the lock loop never gave up on ENOENT");
  }
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // std::system_error(ENOENT) naming the lock file
}

TEST_CASE("file store: temporary files of dead writers are swept, a live writer's never",
          "[global-ipam][file-store]") {
  Dir d;
  { REQUIRE(FileStore(d.path(), 1000ms).put_if("nodes/n1", "v", 0)); }
  CHECK(fs::is_empty(d.path() + "/.tmp"));  // a writer removes its own
  // What killed writers leave: unlocked files, old or just made.
  std::ofstream(d.path() + "/.tmp/123-4-5") << "half written";
  std::ofstream(d.path() + "/.tmp/123-4-6") << "half written, just now";
  auto old = fs::file_time_type::clock::now() - std::chrono::minutes(5);
  fs::last_write_time(d.path() + "/.tmp/123-4-5", old);
  // A slow writer's file: old, but still locked by its (live) writer, as create_tmp does.
  std::ofstream(d.path() + "/.tmp/124-4-7") << "being written";
  fs::last_write_time(d.path() + "/.tmp/124-4-7", old);
  cni::UniqueFd writer(open((d.path() + "/.tmp/124-4-7").c_str(), O_RDWR | O_CLOEXEC));
  REQUIRE(writer);
  REQUIRE(flock(writer.get(), LOCK_EX) == 0);
  FileStore s(d.path(), 1000ms);
  CHECK_FALSE(fs::exists(d.path() + "/.tmp/123-4-5"));
  CHECK_FALSE(fs::exists(d.path() + "/.tmp/123-4-6"));
  CHECK(fs::exists(d.path() + "/.tmp/124-4-7"));
  // Its writer gone (the lock released), the next store removes it.
  writer.reset();
  FileStore again(d.path(), 1000ms);
  CHECK(fs::is_empty(d.path() + "/.tmp"));
  CHECK(again.get("nodes/n1")->value == "v");
}

TEST_CASE("file store: a malformed file is an error naming it", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 1000ms);
  fs::create_directories(d.path() + "/nodes");
  std::ofstream(d.path() + "/nodes/bad") << "not a revision";
  CHECK_THROWS_WITH(s.get("nodes/bad"),
                    "file store " + d.path() + ": malformed record \"" + d.path() + "/nodes/bad\"");
}

TEST_CASE("file store: an empty record (a write a crash cut off) reads as absent",
          "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 1000ms);
  REQUIRE(s.put_if("blocks/p/a", "a1", 0));
  // What a power loss can leave of a new version renamed into place before its data reached
  // the disk (file_store.h, "Durability"): the store never writes an empty file.
  std::ofstream(d.path() + "/blocks/p/b").flush();
  CHECK_FALSE(s.get("blocks/p/b"));
  auto listed = s.list("blocks/p/");
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].key == "blocks/p/a");
  CHECK_FALSE(s.erase_if("blocks/p/b", 1));
  // Written again as a key that does not exist.
  auto rev = s.put_if("blocks/p/b", "b1", 0);
  REQUIRE(rev);
  CHECK(s.get("blocks/p/b")->value == "b1");
  CHECK(s.get("blocks/p/b")->revision == *rev);
}

TEST_CASE("file store: concurrent compare-and-swap loses no update", "[global-ipam][file-store]") {
  Dir d;
  constexpr int kThreads = 4;
  constexpr int kIncrements = 50;
  std::atomic<int> conflicts{0};
  auto worker = [&] {
    FileStore s(d.path(), 5000ms);
    for (int i = 0; i < kIncrements; ++i) {
      for (;;) {
        auto e = s.get("counter/x");
        int n = e ? std::stoi(e->value) : 0;
        if (s.put_if("counter/x", std::to_string(n + 1), e ? e->revision : 0)) break;
        ++conflicts;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  FileStore s(d.path(), 1000ms);
  CHECK(s.get("counter/x")->value == std::to_string(kThreads * kIncrements));
}

TEST_CASE("file store: the block allocator runs on it", "[global-ipam][file-store]") {
  Dir d;
  FileStore s(d.path(), 5000ms);
  auto cfg = ipam::parse_global_ipam(
      {{"pools", {{{"name", "p"}, {"cidr", "10.0.0.0/24"}}}}, {"nodeName", "n"}}, "ipam", {});
  ipam::AllocatorOptions o;
  o.node = "n";
  ipam::BlockAllocator a(cfg.pools, s, o);
  ipam::records::Handle h{"net", "c1", "eth0"};
  auto got = a.assign(h, {});
  REQUIRE(got.size() == 1);
  CHECK(fs::exists(d.path() + "/blocks/p/" + ipam::cidr_key(got[0].block)));
  CHECK(fs::exists(d.path() + "/affinity/n/p/" + ipam::cidr_key(got[0].block)));
  CHECK(fs::exists(d.path() + "/handles/net/c1/eth0"));
  CHECK(fs::exists(d.path() + "/pools/p"));
  CHECK(fs::exists(d.path() + "/nodes/n"));
  CHECK(a.assign(h, {})[0].reused);
  CHECK(a.release(h).size() == 1);
  CHECK_FALSE(fs::exists(d.path() + "/handles/net"));
  auto b = ipam::Block::from_json(
      nlohmann::json::parse(s.get("blocks/p/" + ipam::cidr_key(got[0].block))->value));
  CHECK(b.allocations.empty());
  CHECK(b.affinity == "n");
}
