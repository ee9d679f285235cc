#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "ipam/host_local/disk_store.h"
#include "libcni/core/error.h"
#include "test/support/host_local_fixture.h"

using cni::IpAddress;
using host_local_test::exists;
using host_local_test::files_in;
using host_local_test::mode_of;
using host_local_test::put;
using host_local_test::slurp;
using host_local_test::TmpDir;
using ipam::DiskStore;
using ipam::Lease;
using ipam::LeaseOwner;

namespace {

IpAddress ip(const char* s) { return IpAddress::parse(s); }

std::vector<std::string> sorted(std::vector<Lease> leases) {
  std::vector<std::string> out;
  for (const auto& l : leases)
    out.push_back(l.ip.str() + " " + l.owner.container_id + "/" + l.owner.ifname);
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<DiskStore> open(const TmpDir& d, bool create = true) {
  return DiskStore::open(d.path() + "/data", "net1", create);
}

}  // namespace

TEST_CASE("disk store writes upstream's format", "[host-local][store]") {
  TmpDir d;
  std::string dir = d.path() + "/data/net1";
  {
    auto s = open(d);
    CHECK(s->path() == dir);
    CHECK(s->reserve(ip("10.1.0.2"), {"c1", "eth0"}, 0));
    CHECK(s->reserve(ip("fd00::2"), {"c1", "eth0"}, 1));
    CHECK_FALSE(s->reserve(ip("10.1.0.2"), {"c2", "eth0"}, 0));  // taken
  }
  CHECK(slurp(dir + "/10.1.0.2") == "c1\r\neth0");
  CHECK(slurp(dir + "/fd00::2") == "c1\r\neth0");
  CHECK(slurp(dir + "/last_reserved_ip.0") == "10.1.0.2");
  CHECK(slurp(dir + "/last_reserved_ip.1") == "fd00::2");
  CHECK(files_in(dir) == std::vector<std::string>{"10.1.0.2", "fd00::2", "last_reserved_ip.0",
                                                  "last_reserved_ip.1", "lock"});
  CHECK(mode_of(dir + "/10.1.0.2") == 0600);
  CHECK(mode_of(dir + "/lock") == 0600);
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(d.path() + "/data") == 0700);
  CHECK(mode_of(dir + "/.strait") == 0700);
  // The index entry of the attachment and the stamp.
  std::string entry = slurp(dir + "/.strait/k.c1@eth0");
  CHECK(entry == "strait host-local index 1\nid c1\nif eth0\nip 10.1.0.2\nip fd00::2\n");
  CHECK(exists(dir + "/.strait/stamp"));
  // Upstream removes any file whose trimmed content is "<id>\r\n<ifname>" or "<id>": ours
  // never can be, having spaces and no "\r".
  CHECK(entry.find('\r') == std::string::npos);
  CHECK(slurp(dir + "/.strait/stamp").find('\r') == std::string::npos);

  auto s = open(d);
  CHECK_FALSE(s->rebuilt_index());  // nothing changed behind our back
  CHECK(s->last_reserved(0) == ip("10.1.0.2"));
  CHECK_FALSE(s->last_reserved(7));
}

TEST_CASE("disk store rewrites last_reserved_ip in place, shorter or longer, exactly",
          "[host-local][store]") {
  // Rewritten without O_TRUNC (ext4 flushes a truncated file on close): the file must still
  // hold exactly the address, as upstream reads it whole with no trimming.
  TmpDir d;
  std::string dir = d.path() + "/data/net1";
  {
    auto s = open(d);
    CHECK(s->reserve(ip("10.1.0.200"), {"c1", "eth0"}, 0));
    CHECK(s->reserve(ip("10.1.0.3"), {"c2", "eth0"}, 0));
  }
  CHECK(slurp(dir + "/last_reserved_ip.0") == "10.1.0.3");
  {
    auto s = open(d);
    CHECK_FALSE(s->rebuilt_index());  // the stamp, rewritten in place too, still matches
    CHECK(s->reserve(ip("10.1.0.44"), {"c3", "eth0"}, 0));
  }
  CHECK(slurp(dir + "/last_reserved_ip.0") == "10.1.0.44");
  auto s = open(d);
  CHECK_FALSE(s->rebuilt_index());
  CHECK(s->last_reserved(0) == ip("10.1.0.44"));
}

TEST_CASE("disk store finds an attachment's leases through the index", "[host-local][store]") {
  TmpDir d;
  {
    auto s = open(d);
    s->reserve(ip("10.1.0.2"), {"c1", "eth0"}, 0);
    s->reserve(ip("10.1.0.3"), {"c1", "net1"}, 0);
    s->reserve(ip("10.1.0.4"), {"c2", "eth0"}, 0);
  }
  auto s = open(d);
  CHECK_FALSE(s->rebuilt_index());
  CHECK(sorted(s->find("c1", "eth0")) == std::vector<std::string>{"10.1.0.2 c1/eth0"});
  CHECK(sorted(s->find("c1", "net1")) == std::vector<std::string>{"10.1.0.3 c1/net1"});
  CHECK(s->find("c3", "eth0").empty());
  CHECK(sorted(s->list()) ==
        std::vector<std::string>{"10.1.0.2 c1/eth0", "10.1.0.3 c1/net1", "10.1.0.4 c2/eth0"});
  s->release(ip("10.1.0.2"));
  s->release(ip("10.1.0.2"));  // absent: fine
  s->release(ip("10.1.0.99"));
  CHECK(s->find("c1", "eth0").empty());
  CHECK_FALSE(exists(d.path() + "/data/net1/10.1.0.2"));
  CHECK_FALSE(exists(d.path() + "/data/net1/.strait/k.c1@eth0"));
  CHECK(exists(d.path() + "/data/net1/.strait/k.c1@net1"));
  s.reset();
  CHECK_FALSE(open(d)->rebuilt_index());
}

TEST_CASE("disk store notices leases written or removed by upstream", "[host-local][store]") {
  TmpDir d;
  std::string dir = d.path() + "/data/net1";
  struct stat ours {};  // the directory as the kernel left it after our last write
  {
    auto s = open(d);
    s->reserve(ip("10.1.0.2"), {"c1", "eth0"}, 0);
    REQUIRE(stat(dir.c_str(), &ours) == 0);
  }
  SECTION("a lease created right after our write") {
    put(dir + "/10.1.0.9", "u1\r\neth0");
    auto s = open(d);
    CHECK(s->rebuilt_index());
    CHECK(sorted(s->find("u1", "eth0")) == std::vector<std::string>{"10.1.0.9 u1/eth0"});
    CHECK(exists(dir + "/.strait/k.u1@eth0"));
  }
  SECTION("a lease created in the same clock tick as our write") {
    // With coarse file system timestamps a creation within the same tick leaves the mtime
    // at the value our own write produced; simulate that.
    put(dir + "/10.1.0.9", "u1\r\neth0");
    timespec times[2] = {{0, UTIME_OMIT}, ours.st_mtim};
    REQUIRE(utimensat(AT_FDCWD, dir.c_str(), times, 0) == 0);
    auto s = open(d);
    CHECK(s->rebuilt_index());
    CHECK(sorted(s->find("u1", "eth0")) == std::vector<std::string>{"10.1.0.9 u1/eth0"});
  }
  SECTION("a lease removed") {
    REQUIRE(unlink((dir + "/10.1.0.2").c_str()) == 0);
    auto s = open(d);
    CHECK(s->rebuilt_index());
    CHECK(s->find("c1", "eth0").empty());
    CHECK_FALSE(exists(dir + "/.strait/k.c1@eth0"));
  }
  SECTION("a legacy lease holding only the container ID") {
    put(dir + "/10.1.0.8", "old1\n");
    auto s = open(d);
    CHECK(sorted(s->find("old1", "eth0")) == std::vector<std::string>{"10.1.0.8 old1/"});
    CHECK(sorted(s->find("old1", "net5")) == std::vector<std::string>{"10.1.0.8 old1/"});
  }
  SECTION("a lease rewritten in place (no directory change) is verified before use") {
    put(dir + "/10.1.0.2", "other\r\neth0");
    auto s = open(d);
    CHECK_FALSE(s->rebuilt_index());
    CHECK(s->find("c1", "eth0").empty());  // the index said 10.1.0.2; the lease disagrees
    CHECK(s->rebuilt_index());
    CHECK(sorted(s->find("other", "eth0")) == std::vector<std::string>{"10.1.0.2 other/eth0"});
  }
  SECTION("a lost stamp or a garbled entry rebuilds") {
    put(dir + "/.strait/k.c1@eth0", "garbage");
    {
      auto s = open(d);
      CHECK_FALSE(s->rebuilt_index());
      CHECK(sorted(s->find("c1", "eth0")) == std::vector<std::string>{"10.1.0.2 c1/eth0"});
      CHECK(s->rebuilt_index());
    }
    REQUIRE(unlink((dir + "/.strait/stamp").c_str()) == 0);
    CHECK(open(d)->rebuilt_index());
    CHECK_FALSE(open(d)->rebuilt_index());
  }
  SECTION("files that are not leases are left alone") {
    put(dir + "/notes.txt", "c1\r\neth0");
    put(dir + "/010.1.0.7", "c1\r\neth0");  // not how Go prints an address
    mkdir((dir + "/sub").c_str(), 0700);
    auto s = open(d);
    CHECK(sorted(s->list()) == std::vector<std::string>{"10.1.0.2 c1/eth0"});
    CHECK(s->addresses() == std::vector<IpAddress>{ip("10.1.0.2")});
  }
}

TEST_CASE("disk store keeps every path inside the data directory", "[host-local][store]") {
  TmpDir d;
  for (std::string bad : std::vector<std::string>{"", ".", "..", "../x", "a/b", "/abs", ".hidden",
                                                  std::string("x\0y", 3), std::string(256, 'a')}) {
    CAPTURE(bad);
    auto e = host_local_test::error_of([&] { DiskStore::open(d.path() + "/data", bad, true); });
    CHECK(e.code() == cni::kErrInvalidConfig);
  }
  CHECK(files_in(d.path()).empty());
  CHECK_FALSE(exists(d.path() + "/data"));

  auto s = open(d);
  for (const LeaseOwner& o :
       {LeaseOwner{"../../x", "eth0"}, LeaseOwner{"c1", "a/b"}, LeaseOwner{"c1", ".."},
        LeaseOwner{"c1", ""}, LeaseOwner{"c1", "eth0\r\nx"}, LeaseOwner{"c\r\n1", "eth0"}}) {
    CAPTURE(o.container_id, o.ifname);
    auto e = host_local_test::error_of([&] { s->reserve(ip("10.1.0.2"), o, 0); });
    CHECK(e.code() == cni::kErrInvalidEnv);
  }
  CHECK_FALSE(exists(d.path() + "/data/net1/10.1.0.2"));

  // Index entry names are plain file names that never parse as an address.
  CHECK(DiskStore::entry_name({"c1", "eth0"}) == "k.c1@eth0");
  CHECK(DiskStore::entry_name({"c1", ""}) == "k.c1@");
  CHECK(DiskStore::entry_name({"c1", "e%h@"}) == "k.c1@e%25h%40");
  for (const LeaseOwner& o : {LeaseOwner{"../x", "eth0"}, LeaseOwner{std::string(300, 'a'), "e"},
                              LeaseOwner{"", ""}, LeaseOwner{"a b", "/"}}) {
    std::string n = DiskStore::entry_name(o);
    CAPTURE(n);
    CHECK(n.size() == 18);
    CHECK(n.rfind("h.", 0) == 0);
    CHECK(n.find('/') == std::string::npos);
  }
  // Pinned: entries on disk keep their names across versions. Computed independently as
  // "h.%016x" % FNV-1a-64(id + b"\0" + ifname) in Python; ("", "") is FNV-1a 64 of one NUL
  // byte, a published test vector.
  CHECK(DiskStore::entry_name({"../x", "eth0"}) == "h.89f0a0657130577f");
  CHECK(DiskStore::entry_name({std::string(300, 'a'), "e"}) == "h.cdc4a2a507f71e82");
  CHECK(DiskStore::entry_name({"", ""}) == "h.af63bd4c8601b7df");
  CHECK(DiskStore::entry_name({"a b", "/"}) == "h.69630c088551c0db");
}

TEST_CASE("disk store without create does not make directories", "[host-local][store]") {
  TmpDir d;
  CHECK(open(d, false) == nullptr);
  CHECK_FALSE(exists(d.path() + "/data"));
  mkdir((d.path() + "/data").c_str(), 0700);
  CHECK(open(d, false) == nullptr);
  CHECK_FALSE(exists(d.path() + "/data/net1"));
}

TEST_CASE("disk store serialises concurrent users with the lock", "[host-local][store]") {
  TmpDir d;
  open(d);  // creates the directory
  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto s = open(d);
        // Find a free address the slow way: a lookup and a reservation under one lock.
        for (int host = 2; host < 250; ++host) {
          auto a = IpAddress::parse("10.1.0." + std::to_string(host));
          if (s->reserve(a, {"c" + std::to_string(t) + "x" + std::to_string(i), "eth0"}, 0)) break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  auto s = open(d);
  CHECK(s->list().size() == kThreads * kEach);
  CHECK(files_in(d.path() + "/.strait").empty());  // nothing outside the network directory
  CHECK(host_local_test::files_in(d.path() + "/data/net1/.strait").size() == kThreads * kEach + 1);
}
