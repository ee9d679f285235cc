// The real host-local binary, alone and next to upstream's (/usr/lib/cni/host-local, spec
// <= 1.0.0) on the same lease directory. IPAM only touches files: no namespaces here.

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "libcni/core/ip.h"
#include "libcni/protocol/version.h"
#include "test/support/harness.h"

using nlohmann::json;
using namespace strait::test;
namespace fs = std::filesystem;

namespace {

const char kUpstream[] = "/usr/lib/cni/host-local";
const char kNetns[] = "/var/run/netns/strait-unused";  // never opened by an IPAM plugin

struct Net {
  TempDir dir{"strait-hl"};
  std::string name = unique_name("hl", 40);
  std::string lease_dir() const { return dir.path() + "/" + name; }

  json conf(const std::string& version, json ranges = {{{{"subnet", "10.1.0.0/24"}}}}) const {
    return {{"cniVersion", version},
            {"name", name},
            {"type", "macvlan"},
            {"ipam", {{"type", "host-local"}, {"dataDir", dir.path()}, {"ranges", ranges}}}};
  }
};

PluginRun call(const std::string& binary, const std::string& command, const json& conf,
               const std::string& id = "", const std::string& ifname = "eth0",
               const std::string& cni_args = "") {
  bool attach = command == "ADD" || command == "DEL" || command == "CHECK";
  return run_plugin(binary,
                    plugin_env(command, attach ? id : "", command == "DEL" ? "" : kNetns,
                               attach ? ifname : "", cni_args),
                    conf.dump());
}

std::string ours() { return bin("host-local"); }

// Leases (files named by an address) in a directory, sorted.
std::vector<std::string> leases(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (cni::IpAddress::try_parse(n)) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The first address of an ADD result, without prefix.
std::string first_ip(const PluginRun& r) {
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string a = r.json().at("ips").at(0).at("address").get<std::string>();
  return a.substr(0, a.find('/'));
}

}  // namespace

TEST_CASE("host-local binary speaks every spec version", "[host-local][integration]") {
  for (const auto& v : cni::supported_versions()) {
    DYNAMIC_SECTION("cniVersion " << v) {
      Net net;
      json conf = net.conf(v, {{{{"subnet", "10.1.0.0/24"}}}, {{{"subnet", "fd00:9::/120"}}}});
      PluginRun add = call(ours(), "ADD", conf, "c1");
      INFO(add.out << add.err);
      REQUIRE(add.exit_code == 0);
      json r = add.json();
      CHECK(r["cniVersion"] == v);
      CHECK(r["ips"][0]["address"] == "10.1.0.2/24");
      CHECK(r["ips"][0]["gateway"] == "10.1.0.1");
      CHECK(r["ips"][1]["address"] == "fd00:9::2/120");
      CHECK_FALSE(r["ips"][0].contains("interface"));
      if (cni::version_at_least(v, "1.0.0")) {
        CHECK_FALSE(r["ips"][0].contains("version"));
      } else {
        CHECK(r["ips"][0]["version"] == "4");
        CHECK(r["ips"][1]["version"] == "6");
      }
      CHECK(read_file(net.lease_dir() + "/10.1.0.2") == "c1\r\neth0");

      json with_prev = conf;
      with_prev["prevResult"] = r;
      PluginRun chk = call(ours(), "CHECK", with_prev, "c1");
      if (cni::version_at_least(v, "0.4.0")) {
        CHECK(chk.exit_code == 0);
        CHECK(chk.out.empty());
      } else {
        CHECK(chk.exit_code == 1);
        CHECK(chk.json()["code"] == 1);
      }
      for (const char* verb : {"STATUS", "GC"}) {
        json c = conf;
        c["cni.dev/valid-attachments"] = {{{"containerID", "c1"}, {"ifname", "eth0"}}};
        PluginRun p = call(ours(), verb, c);
        CAPTURE(verb, p.out);
        if (v == "1.1.0") {
          CHECK(p.exit_code == 0);
        } else {
          CHECK(p.exit_code == 1);
          CHECK(p.json()["code"] == 1);
        }
      }
      CHECK(leases(net.lease_dir()) == std::vector<std::string>{"10.1.0.2", "fd00:9::2"});
      PluginRun del = call(ours(), "DEL", conf, "c1");
      CHECK(del.exit_code == 0);
      CHECK(del.out.empty());
      CHECK(leases(net.lease_dir()).empty());
      CHECK(call(ours(), "DEL", conf, "c1").exit_code == 0);  // again: still success
    }
  }
}

TEST_CASE("host-local binary: 50 parallel ADDs get 50 addresses", "[host-local][integration]") {
  Net net;
  json conf = net.conf("1.1.0");
  constexpr size_t kN = 50;
  std::vector<PluginRun> runs(kN);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kN; ++i) {
    threads.emplace_back(
        [&, i] { runs[i] = call(ours(), "ADD", conf, "par" + std::to_string(i)); });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> got;
  for (const auto& r : runs) got.insert(first_ip(r));
  CHECK(got.size() == kN);
  CHECK(leases(net.lease_dir()).size() == kN);
  for (size_t i = 0; i < kN; i += 7) {
    CHECK(call(ours(), "DEL", conf, "par" + std::to_string(i)).exit_code == 0);
  }
  CHECK(leases(net.lease_dir()).size() == kN - 8);
}

TEST_CASE("host-local interop: upstream works on our leases", "[host-local][integration]") {
  Net net;
  json conf = net.conf("1.0.0");
  std::string a = first_ip(call(ours(), "ADD", conf, "c1"));
  std::string b = first_ip(call(ours(), "ADD", conf, "c2"));
  CHECK(a == "10.1.0.2");
  CHECK(b == "10.1.0.3");

  json with_prev = conf;
  with_prev["prevResult"] = call(ours(), "ADD", conf, "c3").json();
  CHECK(call(kUpstream, "CHECK", with_prev, "c3").exit_code == 0);
  // Upstream reads our lease and refuses to hand c1 a second address.
  PluginRun dup = call(kUpstream, "ADD", conf, "c1");
  CHECK(dup.exit_code == 1);
  CHECK(dup.out.find("duplicate allocation is not allowed") != std::string::npos);
  // Upstream continues our round robin and skips our addresses.
  CHECK(first_ip(call(kUpstream, "ADD", conf, "u1")) == "10.1.0.5");

  // Upstream's DEL frees our lease and leaves our index of other attachments alone.
  REQUIRE(call(kUpstream, "DEL", conf, "c1").exit_code == 0);
  CHECK(leases(net.lease_dir()) == std::vector<std::string>{"10.1.0.3", "10.1.0.4", "10.1.0.5"});
  CHECK(fs::exists(net.lease_dir() + "/.strait/k.c2@eth0"));
  CHECK(fs::exists(net.lease_dir() + "/.strait/stamp"));

  // We notice: c1 gets a fresh address, no stale duplicate; u1's lease is known.
  CHECK(first_ip(call(ours(), "ADD", conf, "c1")) == "10.1.0.6");
  PluginRun dup2 = call(ours(), "ADD", conf, "u1");
  CHECK(dup2.exit_code == 1);
  CHECK(dup2.json()["code"] == 102);
  REQUIRE(call(ours(), "DEL", conf, "u1").exit_code == 0);
  REQUIRE(call(kUpstream, "DEL", conf, "c2").exit_code == 0);
  CHECK(leases(net.lease_dir()) == std::vector<std::string>{"10.1.0.4", "10.1.0.6"});
}

TEST_CASE("host-local interop: we work on upstream's leases", "[host-local][integration]") {
  Net net;
  json conf = net.conf("1.0.0", {{{{"subnet", "10.1.0.0/24"}}}, {{{"subnet", "fd00:9::/120"}}}});
  PluginRun u1 = call(kUpstream, "ADD", conf, "u1");
  REQUIRE(u1.exit_code == 0);
  CHECK(first_ip(call(kUpstream, "ADD", conf, "u2")) == "10.1.0.3");

  json with_prev = conf;
  with_prev["prevResult"] = u1.json();
  CHECK(call(ours(), "CHECK", with_prev, "u1").exit_code == 0);
  PluginRun dup = call(ours(), "ADD", conf, "u1");
  CHECK(dup.exit_code == 1);
  CHECK(dup.json()["code"] == 102);
  CHECK(dup.json()["msg"] ==
        "failed to allocate for range 0: 10.1.0.2 has been allocated to "
        "u1/eth0, duplicate allocation is not allowed");

  PluginRun o1 = call(ours(), "ADD", conf, "o1");
  CHECK(first_ip(o1) == "10.1.0.4");
  CHECK(o1.json()["ips"][1]["address"] == "fd00:9::4/120");

  REQUIRE(call(ours(), "DEL", conf, "u1").exit_code == 0);
  CHECK(leases(net.lease_dir()) ==
        std::vector<std::string>{"10.1.0.3", "10.1.0.4", "fd00:9::3", "fd00:9::4"});
  CHECK(first_ip(call(kUpstream, "ADD", conf, "u1")) == "10.1.0.5");

  // A lease upstream wrote before CNI 0.7 holds only the container ID.
  { std::ofstream(net.lease_dir() + "/10.1.0.99") << "legacy"; }
  PluginRun dup_legacy = call(ours(), "ADD", conf, "legacy");
  CHECK(dup_legacy.json()["code"] == 102);
  REQUIRE(call(ours(), "DEL", conf, "legacy").exit_code == 0);
  CHECK_FALSE(fs::exists(net.lease_dir() + "/10.1.0.99"));
}

TEST_CASE("host-local interop: a mixed directory", "[host-local][integration]") {
  Net net;
  json conf = net.conf("1.0.0");
  std::set<std::string> got;
  for (int i = 0; i < 12; ++i) {
    std::string b = i % 2 ? kUpstream : ours();
    got.insert(first_ip(call(b, "ADD", conf, "m" + std::to_string(i))));
  }
  CHECK(got.size() == 12);
  // Each binary releases the other's leases.
  for (int i = 0; i < 12; ++i) {
    std::string b = i % 2 ? ours() : kUpstream;
    CHECK(call(b, "DEL", conf, "m" + std::to_string(i)).exit_code == 0);
  }
  CHECK(leases(net.lease_dir()).empty());
  std::vector<std::string> index;
  for (const auto& e : fs::directory_iterator(net.lease_dir() + "/.strait")) {
    index.push_back(e.path().filename().string());
  }
  CHECK(index == std::vector<std::string>{"stamp"});
}

TEST_CASE("host-local binary errors: exit 1, code, field, nothing left",
          "[host-local][integration]") {
  Net net;
  SECTION("an invalid subnet") {
    json conf = net.conf("1.1.0", {{{{"subnet", "10.1.0.7/24"}}}});
    PluginRun r = call(ours(), "ADD", conf, "c1");
    CHECK(r.exit_code == 1);
    CHECK(r.json()["code"] == 7);
    CHECK(r.json()["msg"] ==
          "invalid config: \"ipam.ranges[0][0].subnet\": \"10.1.0.7/24\" has host bits set "
          "(network is 10.1.0.0/24)");
    CHECK_FALSE(fs::exists(net.lease_dir()));
  }
  SECTION("a used-up range") {
    json conf = net.conf("1.1.0", {{{{"subnet", "10.1.0.0/30"}}}});
    CHECK(first_ip(call(ours(), "ADD", conf, "c1")) == "10.1.0.2");
    PluginRun r = call(ours(), "ADD", conf, "c2");
    CHECK(r.exit_code == 1);
    CHECK(r.json()["code"] == 100);
    CHECK(r.json()["msg"] ==
          "failed to allocate for range 0: no IP addresses available in range "
          "set: 10.1.0.1-10.1.0.2");
    CHECK(r.err.find("no IP addresses available") != std::string::npos);  // logged on stderr
    CHECK(leases(net.lease_dir()) == std::vector<std::string>{"10.1.0.2"});
    PluginRun s = call(ours(), "STATUS", conf);
    CHECK(s.exit_code == 1);
    CHECK(s.json()["code"] == 50);
  }
  SECTION("a bad requested address") {
    json conf = net.conf("1.1.0");
    PluginRun bad = call(ours(), "ADD", conf, "c1", "eth0", "IP=10.1.0.500");
    CHECK(bad.exit_code == 1);
    CHECK(bad.json()["code"] == 4);
    CHECK(bad.json()["msg"].get<std::string>().find("IP=10.1.0.500") != std::string::npos);
    PluginRun gw = call(ours(), "ADD", conf, "c1", "eth0", "IP=10.1.0.1");
    CHECK(gw.json()["code"] == 101);
    CHECK(leases(net.lease_dir()).empty());
  }
  SECTION("an unsafe network name") {
    json conf = net.conf("1.1.0");
    conf["name"] = "../../etc";
    PluginRun r = call(ours(), "ADD", conf, "c1");
    CHECK(r.exit_code == 1);
    CHECK(r.json()["code"] == 7);
    CHECK(r.json()["msg"].get<std::string>().find("\"name\"") != std::string::npos);
    CHECK(fs::is_empty(net.dir.path()));
  }
}
