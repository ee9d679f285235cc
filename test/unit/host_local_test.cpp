#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "ipam/host_local/allocator.h"
#include "ipam/host_local/config.h"
#include "ipam/host_local/disk_store.h"
#include "libcni/core/error.h"
#include "test/support/host_local_fixture.h"

using namespace host_local_test;

namespace {

json conf_for(const TmpDir& d, json ranges, const std::string& version = "1.1.0") {
  return {{"cniVersion", version},
          {"name", "net1"},
          {"type", "macvlan"},
          {"ipam", {{"type", "host-local"}, {"dataDir", d.path()}, {"ranges", std::move(ranges)}}}};
}

json v4(const std::string& subnet = "10.1.0.0/24") { return {{{{"subnet", subnet}}}}; }

json dual() { return {{{{"subnet", "10.1.0.0/24"}}}, {{{"subnet", "fd00:1::/64"}}}}; }

std::string lease_dir(const TmpDir& d) { return d.path() + "/net1"; }

// Lease files only (addresses), sorted.
std::vector<std::string> leases(const TmpDir& d) {
  std::vector<std::string> out;
  for (const auto& f : files_in(lease_dir(d))) {
    if (cni::IpAddress::try_parse(f)) out.push_back(f);
  }
  return out;
}

}  // namespace

TEST_CASE("host-local ADD hands out .2 first, with gateway, routes and DNS", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  conf["ipam"]["routes"] = {{{"dst", "0.0.0.0/0"}},
                            {{"dst", "192.168.0.0/16"}, {"gw", "10.1.0.9"}}};
  put(d.path() + "/resolv.conf", "nameserver 192.0.2.53\nsearch example.com\n");
  conf["ipam"]["resolvConf"] = d.path() + "/resolv.conf";

  cni::Result r = add(conf, "c1");
  REQUIRE(r.ips.size() == 2);
  CHECK(addr(r, 0) == "10.1.0.2/24");
  CHECK(r.ips[0].gateway == cni::IpAddress::parse("10.1.0.1"));
  CHECK_FALSE(r.ips[0].interface);  // IPAM results name no interface
  CHECK(addr(r, 1) == "fd00:1::2/64");
  CHECK(r.ips[1].gateway == cni::IpAddress::parse("fd00:1::1"));
  REQUIRE(r.routes.size() == 2);
  CHECK(r.routes[0].dst.str() == "0.0.0.0/0");
  CHECK_FALSE(r.routes[0].gw);
  CHECK(r.routes[1].gw == cni::IpAddress::parse("10.1.0.9"));
  CHECK(r.dns.nameservers == std::vector<std::string>{"192.0.2.53"});
  CHECK(r.dns.search == std::vector<std::string>{"example.com"});
  CHECK(slurp(lease_dir(d) + "/10.1.0.2") == "c1\r\neth0");
  CHECK(slurp(lease_dir(d) + "/fd00:1::2") == "c1\r\neth0");

  CHECK(addr(add(conf, "c2"), 0) == "10.1.0.3/24");
  CHECK(addr(add(conf, "c1", "net1"), 0) == "10.1.0.4/24");  // another interface, another lease
}

TEST_CASE("host-local allocates round robin", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, v4());
  CHECK(addr(add(conf, "a"), 0) == "10.1.0.2/24");
  del(conf, "a");
  // The released .2 is not handed out again until the range has been used up.
  CHECK(addr(add(conf, "b"), 0) == "10.1.0.3/24");
  CHECK(addr(add(conf, "c"), 0) == "10.1.0.4/24");
  put(lease_dir(d) + "/last_reserved_ip.0", "10.1.0.254");
  CHECK(addr(add(conf, "e"), 0) == "10.1.0.2/24");  // wrapped, skipping the gateway .1
}

TEST_CASE("host-local reports a used-up range and leaves nothing behind", "[host-local]") {
  TmpDir d;
  json ranges = {
      {{{"subnet", "10.1.0.0/29"}, {"rangeStart", "10.1.0.2"}, {"rangeEnd", "10.1.0.3"}}}};
  json conf = conf_for(d, ranges);
  CHECK(addr(add(conf, "a"), 0) == "10.1.0.2/29");
  CHECK(addr(add(conf, "b"), 0) == "10.1.0.3/29");
  auto e = error_of([&] { add(conf, "c"); });
  CHECK(e.code() == ipam::kErrNoAddress);
  CHECK(e.msg() ==
        "failed to allocate for range 0: no IP addresses available in range set: "
        "10.1.0.2-10.1.0.3");
  CHECK(leases(d) == std::vector<std::string>{"10.1.0.2", "10.1.0.3"});

  SECTION("STATUS says so") {
    auto s = error_of([&] { status(conf); });
    CHECK(s.code() == cni::kErrNotAvailable);
    CHECK(s.msg() == "no IP addresses available in range set: 10.1.0.2-10.1.0.3");
    del(conf, "a");
    CHECK_NOTHROW(status(conf));
  }
  SECTION("a partial dual-stack ADD is rolled back") {
    json two = conf_for(d, {{{{"subnet", "fd00::/64"}}}, ranges[0]});
    auto e2 = error_of([&] { add(two, "dual"); });
    CHECK(e2.code() == ipam::kErrNoAddress);
    CHECK(e2.msg().starts_with("failed to allocate for range 1: "));
    CHECK(leases(d) == std::vector<std::string>{"10.1.0.2", "10.1.0.3"});  // fd00::2 released
    CHECK_FALSE(exists(lease_dir(d) + "/.strait/k.dual@eth0"));
  }
}

TEST_CASE("host-local refuses a second ADD of the same attachment", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  add(conf, "c1");
  auto before = files_in(lease_dir(d));
  auto e = error_of([&] { add(conf, "c1"); });
  CHECK(e.code() == ipam::kErrDuplicate);
  CHECK(e.msg() ==
        "failed to allocate for range 0: 10.1.0.2 has been allocated to c1/eth0, "
        "duplicate allocation is not allowed");
  CHECK(files_in(lease_dir(d)) == before);
  CHECK(slurp(lease_dir(d) + "/10.1.0.2") == "c1\r\neth0");
  // A legacy lease of the container counts too (upstream's GetByID matches both).
  put(lease_dir(d) + "/10.1.0.50", "old");
  CHECK(error_of([&] { add(conf, "old"); }).code() == ipam::kErrDuplicate);
}

TEST_CASE("host-local requested addresses", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  SECTION("from CNI_ARGS, one per range set") {
    auto r = add(conf, "c1", "eth0", "IgnoreUnknown=1;IP=10.1.0.77,fd00:1::77");
    CHECK(addr(r, 0) == "10.1.0.77/24");
    CHECK(addr(r, 1) == "fd00:1::77/64");
    CHECK(slurp(lease_dir(d) + "/last_reserved_ip.0") == "10.1.0.77");
  }
  SECTION("from args.cni.ips and runtimeConfig.ips; other sets allocate as usual") {
    conf["args"]["cni"]["ips"] = {"10.1.0.40"};
    CHECK(addr(add(conf, "c1"), 0) == "10.1.0.40/24");
    json rc = conf_for(d, dual());
    rc["runtimeConfig"]["ips"] = {"fd00:1::41/64"};
    auto r = add(rc, "c2");
    CHECK(addr(r, 0) == "10.1.0.41/24");  // round robin after .40
    CHECK(addr(r, 1) == "fd00:1::41/64");
  }
  SECTION("refusals name the address and leave nothing behind") {
    add(conf, "c1", "eth0", "IP=10.1.0.77");
    auto taken = error_of([&] { add(conf, "c2", "eth0", "IP=10.1.0.77"); });
    CHECK(taken.code() == ipam::kErrAddressUnavailable);
    CHECK(taken.msg() ==
          "failed to allocate for range 0: requested IP address 10.1.0.77 is not "
          "available in range set 10.1.0.1-10.1.0.254");
    auto gw = error_of([&] { add(conf, "c2", "eth0", "IP=10.1.0.1"); });
    CHECK(gw.msg() == "failed to allocate for range 0: requested ip 10.1.0.1 is subnet's gateway");
    auto outside = error_of([&] { add(conf, "c2", "eth0", "IP=10.9.0.1"); });
    CHECK(outside.code() == ipam::kErrAddressUnavailable);
    CHECK(outside.msg() ==
          "failed to allocate all requested IPs: 10.9.0.1 (CNI_ARGS IP) is not "
          "in any configured range");
    auto two = error_of([&] { add(conf, "c2", "eth0", "IP=10.1.0.5,10.1.0.6"); });
    CHECK(two.msg().starts_with("failed to allocate all requested IPs: 10.1.0.6 (CNI_ARGS IP)"));
    // The broadcast is outside the default range.
    CHECK(error_of([&] { add(conf, "c2", "eth0", "IP=10.1.0.255"); }).code() ==
          ipam::kErrAddressUnavailable);
    CHECK(leases(d).size() == 2);  // c1's two
  }
}

TEST_CASE("host-local DEL is idempotent and exact", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  add(conf, "c1");
  add(conf, "c1", "net1");
  add(conf, "c2");
  del(conf, "c1");
  CHECK(leases(d) == std::vector<std::string>{"10.1.0.3", "10.1.0.4", "fd00:1::3", "fd00:1::4"});
  del(conf, "c1");
  del(conf, "unknown");
  del(conf, "c1", "net1");
  del(conf, "c2");
  CHECK(leases(d).empty());
  CHECK(files_in(lease_dir(d) + "/.strait") == std::vector<std::string>{"stamp"});
}

TEST_CASE("host-local DEL of a network never used creates nothing", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, v4());
  conf["ipam"]["dataDir"] = d.path() + "/missing";
  del(conf, "c1");
  CHECK_FALSE(exists(d.path() + "/missing"));
}

TEST_CASE("host-local DEL releases legacy leases only without exact ones", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, v4());
  add(conf, "x", "eth0");  // creates the directory
  del(conf, "x", "eth0");
  put(lease_dir(d) + "/10.1.0.60", "old");
  put(lease_dir(d) + "/10.1.0.61", "old\r\nnet1");
  del(conf, "old", "net1");  // its own lease exists: the legacy one stays
  CHECK(leases(d) == std::vector<std::string>{"10.1.0.60"});
  del(conf, "old", "eth0");  // nothing of its own: the legacy one goes
  CHECK(leases(d).empty());
}

TEST_CASE("host-local CHECK", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  auto r = add(conf, "c1");
  CHECK_NOTHROW(check(conf, "c1"));

  json with_prev = conf;
  with_prev["prevResult"] = cni::result_to_json(r, "1.1.0");
  CHECK_NOTHROW(check(with_prev, "c1"));
  // Addresses of other plugins in prevResult are none of our business.
  with_prev["prevResult"]["ips"].push_back({{"address", "192.0.2.5/24"}});
  CHECK_NOTHROW(check(with_prev, "c1"));

  auto missing = error_of([&] { check(conf, "c9"); });
  CHECK(missing.code() == ipam::kErrLeaseMismatch);
  CHECK(missing.msg() == "host-local: failed to find address added by container c9/eth0");

  json wrong = conf;
  r.ips[0].address = cni::IpNet::parse("10.1.0.99/24");
  wrong["prevResult"] = cni::result_to_json(r, "1.1.0");
  auto mismatch = error_of([&] { check(wrong, "c1"); });
  CHECK(mismatch.code() == ipam::kErrLeaseMismatch);
  CHECK(mismatch.msg() == "host-local: prevResult address 10.1.0.99 is not leased to c1/eth0");

  r.ips.pop_back();
  r.ips[0].address = cni::IpNet::parse("10.1.0.2/24");
  wrong["prevResult"] = cni::result_to_json(r, "1.1.0");
  CHECK(error_of([&] { check(wrong, "c1"); }).msg() ==
        "host-local: fd00:1::2 is leased to c1/eth0 but missing from prevResult");

  REQUIRE(unlink((lease_dir(d) + "/fd00:1::2").c_str()) == 0);
  CHECK(error_of([&] { check(conf, "c1"); }).msg() ==
        "host-local: c1/eth0 holds no address of range set 1 "
        "(fd00:1::1-fd00:1::ffff:ffff:ffff:ffff)");
  json nowhere = conf;
  nowhere["ipam"]["dataDir"] = d.path() + "/missing";
  CHECK(error_of([&] { check(nowhere, "c1"); }).code() == ipam::kErrLeaseMismatch);
}

TEST_CASE("host-local GC: absent, empty and listed attachments", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, v4());
  add(conf, "keep");
  add(conf, "keep", "net1");
  add(conf, "gone");
  put(lease_dir(d) + "/10.1.0.70", "legacykeep");
  put(lease_dir(d) + "/10.1.0.71", "legacygone");
  put(lease_dir(d) + "/10.1.0.72", "");  // a crash between create and write
  const auto all = leases(d);
  REQUIRE(all.size() == 6);

  SECTION("no GC key: nothing is collected") {
    gc(conf);
    CHECK(leases(d) == all);
  }
  SECTION("an empty list: everything goes, bookkeeping files stay") {
    conf["cni.dev/valid-attachments"] = json::array();
    gc(conf);
    CHECK(leases(d).empty());
    CHECK(exists(lease_dir(d) + "/lock"));
    CHECK(exists(lease_dir(d) + "/last_reserved_ip.0"));
    CHECK(files_in(lease_dir(d) + "/.strait") == std::vector<std::string>{"stamp"});
  }
  SECTION("a list: the rest goes") {
    conf["cni.dev/valid-attachments"] = {{{"containerID", "keep"}, {"ifname", "eth0"}},
                                         {{"containerID", "legacykeep"}, {"ifname", "eth0"}}};
    gc(conf);
    CHECK(leases(d) == std::vector<std::string>{"10.1.0.2", "10.1.0.70"});
    // The freed addresses are usable again, and the index agrees with the files.
    auto s = ipam::DiskStore::open(d.path(), "net1", false);
    CHECK_FALSE(s->rebuilt_index());
    CHECK(s->find("keep", "net1").empty());
    CHECK(s->find("gone", "eth0").empty());
  }
  SECTION("the legacy key name works too") {
    conf["cni.dev/attachments"] = {{{"containerID", "gone"}, {"ifname", "eth0"}}};
    gc(conf);
    CHECK(leases(d) == std::vector<std::string>{"10.1.0.4"});
  }
}

TEST_CASE("host-local STATUS", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  CHECK_NOTHROW(status(conf));
  CHECK(exists(lease_dir(d) + "/lock"));
  put(d.path() + "/file", "x");
  conf["ipam"]["dataDir"] = d.path() + "/file/sub";
  auto e = error_of([&] { status(conf); });
  CHECK(e.code() == cni::kErrNotAvailable);
  CHECK_THAT(e.msg(), Catch::StartsWith("host-local: lease store unavailable: failed to create "
                                        "directory \"" +
                                        d.path() + "/file/sub\""));
}

TEST_CASE("host-local keeps names out of the data directory's parents", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, v4());
  conf["name"] = "../escape";
  // parse_netconf refuses the name before the verb runs...
  CHECK(error_of([&] { add(conf, "c1"); }).code() == cni::kErrInvalidConfig);
  // ...and so does host-local itself when handed an unchecked one.
  cni::NetConf nc;
  nc.name = "../escape";
  nc.raw = conf;
  nc.ipam = conf["ipam"];
  nc.runtime_config = json::object();
  nc.args = json::object();
  auto e = error_of([&] { ipam::parse_host_local_config(nc, cni::Env{}); });
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK(e.msg() ==
        "invalid config: \"name\": \"../escape\" must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  CHECK(fs::is_empty(d.path()));
  CHECK_FALSE(exists(d.path() + "/../escape"));
}

TEST_CASE("host-local sees leases written by upstream host-local", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, v4());
  add(conf, "ours");
  // What upstream writes on its ADD.
  put(lease_dir(d) + "/10.1.0.3", "theirs\r\neth0");
  put(lease_dir(d) + "/last_reserved_ip.0", "10.1.0.3");
  CHECK(error_of([&] { add(conf, "theirs"); }).code() == ipam::kErrDuplicate);
  CHECK(addr(add(conf, "next"), 0) == "10.1.0.4/24");
  del(conf, "theirs");
  CHECK(leases(d) == std::vector<std::string>{"10.1.0.2", "10.1.0.4"});
  // Upstream's DEL of ours.
  REQUIRE(unlink((lease_dir(d) + "/10.1.0.2").c_str()) == 0);
  CHECK(addr(add(conf, "ours"), 0) == "10.1.0.5/24");  // no stale duplicate
}

TEST_CASE("host-local gives parallel ADDs distinct addresses", "[host-local]") {
  TmpDir d;
  json conf = conf_for(d, dual());
  constexpr int kN = 20;
  std::vector<std::string> got(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      // No Catch2 assertions off the main thread: record failures as results.
      try {
        got[static_cast<size_t>(i)] = addr(add(conf, "p" + std::to_string(i)), 0);
      } catch (const std::exception& e) {
        got[static_cast<size_t>(i)] = std::string("error: ") + e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(g.rfind("10.1.0.", 0) == 0);
  CHECK(std::set<std::string>(got.begin(), got.end()).size() == kN);
  CHECK(leases(d).size() == 2 * kN);
}
