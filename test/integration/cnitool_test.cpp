// cnitool end to end: the real binary runs a chain of two echo-plugin instances (a fixture that
// records what it was sent) against a namespace made for the test, for every spec version.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/process/invoke.h"
#include "test/support/harness.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using strait::test::TempDir;
using strait::test::TempNetns;

const std::vector<std::string> kVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

bool at_least(const std::string& v, const std::string& min) {
  auto idx = [](const std::string& s) {
    for (size_t i = 0; i < kVersions.size(); ++i) {
      if (kVersions[i] == s) return i;
    }
    FAIL("unknown version " << s);
    return size_t{0};
  };
  return idx(v) >= idx(min);
}

// The container ID computed independently of the tool: coreutils over the netns path.
std::string expected_container_id(const std::string& netns) {
  std::string hex = strait::test::sh_ok("printf %s '" + netns + "' | sha512sum | cut -c1-20");
  hex.erase(hex.find_last_not_of('\n') + 1);
  REQUIRE(hex.size() == 20);
  return "cnitool-" + hex;
}

// One network of two echo-plugins in a temp config dir, with its own cache and record file.
class Setup {
 public:
  explicit Setup(const std::string& version, const std::string& first_extra = "")
      : name_(strait::test::unique_name("cnitool-it", 40)), version_(version) {
    json first = json::parse(R"({"type":"echo-plugin","tag":"first","address":"10.99.0.5/24",)"
                             R"("capabilities":{"portMappings":true,"mac":false}})");
    if (!first_extra.empty()) first.update(json::parse(first_extra));
    first["recordFile"] = record_file();
    json second = {{"type", "echo-plugin"},
                   {"tag", "second"},
                   {"capabilities", {{"bandwidth", true}}},
                   {"recordFile", record_file()}};
    json list = {{"cniVersion", version}, {"name", name_}, {"plugins", {first, second}}};
    std::ofstream(conf_.path() + "/10-" + name_ + ".conflist") << list.dump(2);
    // A decoy with the same name but .conf: the .conflist must win.
    std::ofstream(conf_.path() + "/05-" + name_ + ".conf")
        << json{{"cniVersion", version}, {"name", name_}, {"type", "nonexistent-plugin"}}.dump();
  }

  const std::string& name() const { return name_; }
  std::string record_file() const { return work_.path() + "/record.jsonl"; }
  std::string cache_root() const { return work_.path() + "/cache"; }
  std::string cache_file(const std::string& container_id, const std::string& ifname = "eth0") {
    return cache_root() + "/results/" + name_ + "-" + container_id + "-" + ifname;
  }

  cni::EnvMap env() const {
    return {{"NETCONFPATH", conf_.path()},
            {"CNI_PATH", std::string(STRAIT_TEST_BIN_DIR) + ":" + STRAIT_BIN_DIR},
            {"CNI_CACHE_DIR", cache_root()},
            {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=pod1"},
            {"CAP_ARGS", cap_args().dump()},
            {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
  }
  static json cap_args() {
    return {{"portMappings", json::array({{{"hostPort", 8080}, {"containerPort", 80}}})},
            {"bandwidth", {{"ingressRate", 1000000}, {"ingressBurst", 200000}}},
            {"mac", "c2:11:22:33:44:55"}};
  }

  // cnitool `args`, bounded by a minute: a cnitool that hangs fails its test, not the run.
  cni::ExecResult run(std::vector<std::string> args, cni::EnvMap env_override = {},
                      std::vector<std::string> wrapper = {}) const {
    args.insert(args.begin(), strait::test::bin("cnitool"));
    args.insert(args.begin(), wrapper.begin(), wrapper.end());
    cni::EnvMap e = env();
    for (auto& [k, v] : env_override) e[k] = v;
    auto r = cni::spawn(args, e, "", cni::SpawnOptions{std::chrono::minutes(1)});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE_FALSE(r.timed_out_after);
    return r;
  }

  const std::string& conf_dir() const { return conf_.path(); }

  // Every recorded call since the last take(), oldest first.
  std::vector<json> take() {
    std::vector<json> out;
    std::ifstream in(record_file());
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line));
    fs::remove(record_file());
    return out;
  }

 private:
  TempDir conf_{"strait-cnitool-conf"};
  TempDir work_{"strait-cnitool-work"};
  std::string name_;
  std::string version_;
};

json parse_out(const cni::ExecResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

void require_ok(const cni::ExecResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE("cnitool add, check and del through a two-plugin chain", "[cnitool]") {
  for (const auto& version : kVersions) {
    CAPTURE(version);
    Setup s(version);
    TempNetns ns("ct");
    const std::string id = expected_container_id(ns.path());

    // ADD: the first plugin builds the result, the second gets it as prevResult.
    json result = parse_out(s.run({"add", s.name(), ns.path()}));
    CHECK(result["cniVersion"] == version);
    REQUIRE(result["interfaces"].size() == 1);
    CHECK(result["interfaces"][0] == json{{"name", "eth0"}, {"sandbox", ns.path()}});
    REQUIRE(result["ips"].size() == 1);
    CHECK(result["ips"][0]["address"] == "10.99.0.5/24");
    CHECK(result["ips"][0]["interface"] == 0);
    CHECK(result["ips"][0].contains("version") == !at_least(version, "1.0.0"));

    auto calls = s.take();
    REQUIRE(calls.size() == 2);
    for (const auto& c : calls) {
      CHECK(c["command"] == "ADD");
      CHECK(c["containerID"] == id);
      CHECK(c["ifname"] == "eth0");
      CHECK(c["netns"] == ns.path());
      CHECK(c["cniArgs"] == "IgnoreUnknown=1;K8S_POD_NAME=pod1");
      CHECK(c["stdin"]["cniVersion"] == version);
      CHECK(c["stdin"]["name"] == s.name());
      CHECK_FALSE(c["stdin"].contains("capabilities"));
    }
    CHECK(calls[0]["stdin"]["tag"] == "first");
    CHECK(calls[1]["stdin"]["tag"] == "second");
    CHECK_FALSE(calls[0]["stdin"].contains("prevResult"));
    CHECK(calls[1]["stdin"]["prevResult"] == result);
    // Declared-and-supplied capabilities only: mac is declared false.
    CHECK(calls[0]["stdin"]["runtimeConfig"] ==
          json{{"portMappings", Setup::cap_args()["portMappings"]}});
    CHECK(calls[1]["stdin"]["runtimeConfig"] ==
          json{{"bandwidth", Setup::cap_args()["bandwidth"]}});

    // The cache entry, in libcni's format.
    const std::string cache = s.cache_file(id);
    REQUIRE(fs::exists(cache));
    struct stat st {};
    REQUIRE(stat(cache.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::ifstream in(cache);
    json entry = json::parse(in);
    CHECK(entry["kind"] == "cniCacheV1");
    CHECK(entry["containerId"] == id);
    CHECK(entry["networkName"] == s.name());
    CHECK(entry["ifName"] == "eth0");
    CHECK(entry["netns"] == ns.path());
    CHECK(entry["cniArgs"] == json::array({{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "pod1"}}));
    CHECK(entry["capabilityArgs"] == Setup::cap_args());
    CHECK(entry["result"] == result);

    // CHECK: forward order with the cached result, from 0.4.0 on.
    auto check = s.run({"check", s.name(), ns.path()});
    calls = s.take();
    if (at_least(version, "0.4.0")) {
      require_ok(check);
      REQUIRE(calls.size() == 2);
      CHECK(calls[0]["command"] == "CHECK");
      CHECK(calls[0]["stdin"]["tag"] == "first");
      CHECK(calls[1]["stdin"]["tag"] == "second");
      CHECK(calls[0]["stdin"]["prevResult"] == result);
      CHECK(calls[1]["stdin"]["prevResult"] == result);
      CHECK(calls[0]["stdin"]["runtimeConfig"] ==
            json{{"portMappings", Setup::cap_args()["portMappings"]}});
    } else {
      CHECK(check.exit_code == 1);
      CHECK_THAT(check.err, Catch::Contains("does not support the CHECK command"));
      CHECK(calls.empty());
    }

    // DEL: reverse order, the cached result as prevResult from 0.4.0 on, cache entry removed.
    require_ok(s.run({"del", s.name(), ns.path()}));
    calls = s.take();
    REQUIRE(calls.size() == 2);
    CHECK(calls[0]["command"] == "DEL");
    CHECK(calls[0]["stdin"]["tag"] == "second");
    CHECK(calls[1]["stdin"]["tag"] == "first");
    for (const auto& c : calls) {
      CHECK(c["containerID"] == id);
      CHECK(c["netns"] == ns.path());
      if (at_least(version, "0.4.0")) {
        CHECK(c["stdin"]["prevResult"] == result);
      } else {
        CHECK_FALSE(c["stdin"].contains("prevResult"));
      }
    }
    CHECK_FALSE(fs::exists(cache));

    // DEL again: idempotent, no prevResult any more.
    require_ok(s.run({"del", s.name(), ns.path()}));
    calls = s.take();
    REQUIRE(calls.size() == 2);
    CHECK_FALSE(calls[0]["stdin"].contains("prevResult"));
  }
}

TEST_CASE("cnitool honours CNI_IFNAME and -i", "[cnitool]") {
  Setup s("1.0.0");
  TempNetns ns("ct");
  const std::string id = expected_container_id(ns.path());
  json r = parse_out(s.run({"add", s.name(), ns.path()}, {{"CNI_IFNAME", "net1"}}));
  CHECK(r["interfaces"][0]["name"] == "net1");
  CHECK(fs::exists(s.cache_file(id, "net1")));
  json r2 = parse_out(s.run({"add", "-i", "net2", s.name(), ns.path()}, {{"CNI_IFNAME", "net1"}}));
  CHECK(r2["interfaces"][0]["name"] == "net2");
  CHECK(fs::exists(s.cache_file(id, "net2")));
  auto calls = s.take();
  REQUIRE(calls.size() == 4);
  CHECK(calls[2]["ifname"] == "net2");
  require_ok(s.run({"del", s.name(), ns.path(), "--ifname", "net1"}));
  require_ok(s.run({"del", s.name(), ns.path(), "-i", "net2"}));
  CHECK_FALSE(fs::exists(s.cache_file(id, "net1")));
  CHECK_FALSE(fs::exists(s.cache_file(id, "net2")));
}

TEST_CASE("cnitool gc deletes stale attachments and sends GC", "[cnitool]") {
  for (const auto& version : kVersions) {
    CAPTURE(version);
    Setup s(version);
    TempNetns keep("ct");
    TempNetns stale("ct");
    const std::string keep_id = expected_container_id(keep.path());
    const std::string stale_id = expected_container_id(stale.path());
    require_ok(s.run({"add", s.name(), keep.path()}));
    require_ok(s.run({"add", s.name(), stale.path()}, {{"CNI_ARGS", "K8S_POD_NAME=old"}}));
    s.take();

    // Valid attachments given: only the stale one is deleted (with its cached CNI_ARGS and
    // netns), then every plugin gets GC with both keys (1.1.0 only).
    require_ok(s.run({"gc", s.name(), keep.path(), "--valid", keep_id + ":eth0"}));
    auto calls = s.take();
    size_t gc_calls = at_least(version, "1.1.0") ? 2 : 0;
    REQUIRE(calls.size() == 2 + gc_calls);
    for (size_t i = 0; i < 2; ++i) {
      CHECK(calls[i]["command"] == "DEL");
      CHECK(calls[i]["containerID"] == stale_id);
      CHECK(calls[i]["netns"] == stale.path());
      CHECK(calls[i]["cniArgs"] == "K8S_POD_NAME=old");
      // The cached capability args come back too.
    }
    CHECK(calls[0]["stdin"]["tag"] == "second");
    CHECK(calls[1]["stdin"]["runtimeConfig"] ==
          json{{"portMappings", Setup::cap_args()["portMappings"]}});
    json valid = json::array({{{"containerID", keep_id}, {"ifname", "eth0"}}});
    for (size_t i = 2; i < calls.size(); ++i) {
      CHECK(calls[i]["command"] == "GC");
      CHECK(calls[i]["containerID"] == "");
      CHECK(calls[i]["stdin"]["cni.dev/valid-attachments"] == valid);
      CHECK(calls[i]["stdin"]["cni.dev/attachments"] == valid);
      CHECK_FALSE(calls[i]["stdin"].contains("capabilities"));
    }
    if (gc_calls) {
      CHECK(calls[2]["stdin"]["tag"] == "first");
      CHECK(calls[3]["stdin"]["tag"] == "second");
    }
    CHECK(fs::exists(s.cache_file(keep_id)));
    CHECK_FALSE(fs::exists(s.cache_file(stale_id)));

    // As upstream cnitool: no valid attachments -> everything of this network is deleted and
    // GC carries neither key.
    require_ok(s.run({"gc", s.name(), keep.path()}));
    calls = s.take();
    REQUIRE(calls.size() == 2 + gc_calls);
    CHECK(calls[0]["command"] == "DEL");
    CHECK(calls[0]["containerID"] == keep_id);
    for (size_t i = 2; i < calls.size(); ++i) {
      CHECK(calls[i]["command"] == "GC");
      CHECK_FALSE(calls[i]["stdin"].contains("cni.dev/valid-attachments"));
      CHECK_FALSE(calls[i]["stdin"].contains("cni.dev/attachments"));
    }
    CHECK_FALSE(fs::exists(s.cache_file(keep_id)));
  }
}

TEST_CASE("cnitool status and version", "[cnitool]") {
  for (const auto& version : kVersions) {
    CAPTURE(version);
    Setup s(version);
    auto status = s.run({"status", s.name(), "/nonexistent"});
    require_ok(status);
    auto calls = s.take();
    if (at_least(version, "1.1.0")) {
      REQUIRE(calls.size() == 2);
      CHECK(calls[0]["command"] == "STATUS");
      CHECK(calls[0]["stdin"]["tag"] == "first");
      CHECK(calls[0]["stdin"]["name"] == s.name());
      CHECK_FALSE(calls[0]["stdin"].contains("runtimeConfig"));
    } else {
      CHECK(calls.empty());  // STATUS came with 1.1.0; libcni skips it silently before
    }

    json v = parse_out(s.run({"version", s.name()}));
    CHECK(v["name"] == s.name());
    CHECK(v["cniVersion"] == version);
    REQUIRE(v["plugins"].size() == 2);
    for (const auto& p : v["plugins"]) {
      CHECK(p["type"] == "echo-plugin");
      CHECK(p["supportedVersions"] == json(kVersions));
    }
  }
}

TEST_CASE("cnitool status reports a failing plugin", "[cnitool]") {
  Setup s("1.1.0", R"({"failCommand":"STATUS","failCode":50,"failMsg":"pool not ready"})");
  auto r = s.run({"status", s.name(), "/nonexistent"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("pool not ready"));
  CHECK(s.take().empty());  // the first plugin failed, the second never ran
}

TEST_CASE("cnitool reports a failed ADD and caches nothing", "[cnitool]") {
  Setup s("1.0.0", R"({"failCommand":"ADD","failCode":11,"failMsg":"try later"})");
  TempNetns ns("ct");
  auto r = s.run({"add", s.name(), ns.path()});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "cnitool: plugin type=\"echo-plugin\" failed (add): try later; failCommand=ADD\n");
  CHECK_FALSE(fs::exists(s.cache_file(expected_container_id(ns.path()))));

  auto missing = s.run({"add", "no-such-network", ns.path()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("no net configuration with name \"no-such-network\""));
}

TEST_CASE("cnitool kills a plugin that never exits after STRAIT_DELEGATE_TIMEOUT", "[cnitool]") {
  Setup s("1.1.0", R"({"hangCommand":"ADD"})");
  TempNetns ns("ct");
  auto r = s.run({"add", s.name(), ns.path()}, {{"STRAIT_DELEGATE_TIMEOUT", "1"}});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "cnitool: plugin type=\"echo-plugin\" failed (add): plugin \"echo-plugin\" did not "
        "finish within 1 s and was killed (STRAIT_DELEGATE_TIMEOUT sets the limit)\n");
  auto calls = s.take();
  REQUIRE(calls.size() == 1);  // the first plugin started, hung and was killed
  CHECK(calls[0]["command"] == "ADD");
  CHECK_FALSE(fs::exists(s.cache_file(expected_container_id(ns.path()))));

  // A bound that is not a whole number of seconds from 1 to 3600 runs nothing.
  auto bad = s.run({"add", s.name(), ns.path()}, {{"STRAIT_DELEGATE_TIMEOUT", "0"}});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::StartsWith("cnitool: STRAIT_DELEGATE_TIMEOUT: \"0\""));
  CHECK(s.take().empty());
}

TEST_CASE("cnitool opens its configs and cache entries close-on-exec", "[cnitool]") {
  // An fd cnitool holds while another thread spawns a plugin would leak into it: every open
  // of a config or a cache file (strace, cnitool's own process) must carry O_CLOEXEC.
  Setup s("1.1.0");
  TempNetns ns("ct");
  TempDir trace_dir("strait-cnitool-strace");
  const std::string log = trace_dir.path() + "/log";
  const std::vector<std::string> strace = {"/usr/bin/strace", "-o", log, "-e",
                                           "trace=open,openat,openat2"};
  const cni::EnvMap no_lsan = {{"ASAN_OPTIONS", "detect_leaks=0"}};  // LSan cannot run traced
  int opens = 0;
  for (const char* verb : {"add", "check", "del"}) {
    CAPTURE(verb);
    require_ok(s.run({verb, s.name(), ns.path()}, no_lsan, strace));
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      const bool ours = line.find("\"" + s.conf_dir()) != std::string::npos ||
                        line.find("\"" + s.cache_root()) != std::string::npos;
      if (!ours || line.find(" = -1 ") != std::string::npos) continue;
      ++opens;
      CAPTURE(line);
      CHECK(line.find("O_CLOEXEC") != std::string::npos);
    }
  }
  CHECK(opens >= 4);  // the config and the cache entry were read (and the entry written)
}
