#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnitool/cli.h"
#include "cnitool/container_id.h"
#include "cnitool/network_list.h"
#include "cnitool/result_cache.h"
#include "cnitool/runner.h"
#include "cnitool/sha512.h"
#include "libcni/core/base64.h"
#include "libcni/core/error.h"
#include "libcni/process/invoke.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using cni::tool::NetworkList;

class TmpDir {
 public:
  TmpDir() {
    std::string tmpl = (fs::temp_directory_path() / "strait-cnitool-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fake plugin host: records every call and answers per plugin type and verb. ADD answers
// with the configured result, or echoes prevResult and appends one interface named after the
// plugin, so the test sees the chain thread results through.
class FakeRunner : public cni::ExecRunner {
 public:
  struct Call {
    std::string type;
    std::string command;
    cni::EnvMap env;
    json stdin_conf;
  };
  std::vector<Call> calls;
  std::map<std::string, std::string> fail;  // "type/COMMAND" -> error JSON

  cni::ExecResult run(const std::string& path, const cni::EnvMap& env,
                      std::string_view input) override {
    std::string type = fs::path(path).filename().string();
    std::string command = env.at("CNI_COMMAND");
    json conf = json::parse(input);
    calls.push_back({type, command, env, conf});
    if (auto it = fail.find(type + "/" + command); it != fail.end()) return {1, it->second, ""};
    if (command == "VERSION") {
      return {0, R"({"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]})", ""};
    }
    if (command != "ADD") return {0, "", ""};
    json r;
    if (conf.contains("prevResult")) {
      r = conf["prevResult"];
    } else {
      r = {{"cniVersion", conf["cniVersion"]},
           {"ips", json::array({{{"address", "10.99.0.5/24"}, {"interface", 0}}})},
           {"interfaces", json::array()}};
      if (conf["cniVersion"] != "1.0.0" && conf["cniVersion"] != "1.1.0") {
        r["ips"][0]["version"] = "4";
      }
    }
    r["interfaces"].push_back({{"name", type}});
    return {0, r.dump(), ""};
  }
};

struct PluginBins {
  PluginBins() {
    for (const char* name : {"p1", "p2", "p3"}) {
      std::string path = dir / name;
      write_file(path, "#!/bin/sh\nexit 1\n");
      fs::permissions(path, fs::perms::owner_all);
    }
  }
  TmpDir dir;
};

NetworkList make_list(const std::string& version, const std::string& extra = "") {
  std::string text = R"({"cniVersion":")" + version + R"(","name":"testnet",)" + extra +
                     R"("plugins":[{"type":"p1","capabilities":{"portMappings":true,"mac":false},)"
                     R"("foo":1},{"type":"p2","capabilities":{"bandwidth":true}},{"type":"p3"}]})";
  return cni::tool::network_list_from_bytes(text, "test");
}

cni::tool::RuntimeConf make_rt() {
  cni::tool::RuntimeConf rt;
  rt.container_id = "ctr-1";
  rt.netns = "/run/netns/test";
  rt.ifname = "eth0";
  rt.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "pod"}};
  rt.capability_args = {{"portMappings", json::array({{{"hostPort", 80}}})},
                        {"mac", "c2:11:22:33:44:55"},
                        {"bandwidth", {{"ingressRate", 1000}}}};
  return rt;
}

}  // namespace

TEST_CASE("sha512 matches FIPS 180-4 test vectors", "[cnitool]") {
  auto hex = [](std::string_view s) {
    auto d = cni::tool::sha512(s);
    return cni::tool::to_hex(d.data(), d.size());
  };
  CHECK(hex("") ==
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
  CHECK(hex("abc") ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  CHECK(hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
            "klmnopqrlmnopqrsmnopqrstnopqrstu") ==
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
}

TEST_CASE("container ID is cnitool- plus 20 hex digits of sha512(netns)", "[cnitool]") {
  // What upstream cnitool computes: containerID := fmt.Sprintf("cnitool-%x", s[:10]) with
  // s := sha512.Sum512([]byte(netns)) over the absolute netns path (cnitool/cnitool.go).
  // Pinned literals, computed once outside this code as
  //   "cnitool-" + hashlib.sha512(path.encode()).hexdigest()[:20]
  // in Python and checked against coreutils' sha512sum. The paths straddle SHA-512's
  // padding boundaries (111/112 bytes, one 128-byte block, two blocks).
  const std::vector<std::pair<std::string, std::string>> pinned = {
      {"/run/netns/test", "cnitool-8ae22670664f2caaa6b3"},
      {"/run/netns/blue", "cnitool-df26705e2e4ffd095eb1"},
      {"/var/run/netns/cni-1234-abcd", "cnitool-1c60a8afd0a7f2c57284"},
      {"/" + std::string(110, 'a'), "cnitool-0eccae6d25370fa12d1e"},  // 111 bytes
      {"/" + std::string(111, 'b'), "cnitool-f1e48412712b08c3eeca"},  // 112 bytes
      {"/" + std::string(127, 'c'), "cnitool-125873ff8f10edc2578a"},  // 128 bytes
      {"/" + std::string(200, 'd'), "cnitool-53b02e7b63cc94305819"},  // 201 bytes
  };
  for (const auto& [path, id] : pinned) {
    CAPTURE(path);
    CHECK(cni::tool::container_id_for_netns(path) == id);
  }
}

TEST_CASE("absolute_path cleans like Go's filepath.Abs", "[cnitool]") {
  using cni::tool::absolute_path;
  CHECK(absolute_path("/run/netns/x", "/home") == "/run/netns/x");
  CHECK(absolute_path("x", "/run/netns") == "/run/netns/x");
  CHECK(absolute_path("./x/", "/run/netns/") == "/run/netns/x");
  CHECK(absolute_path("../y//z", "/run/netns") == "/run/y/z");
  CHECK(absolute_path("/../..", "/") == "/");
  CHECK(absolute_path("", "/tmp") == "/tmp");
}

TEST_CASE("base64 matches Go's []byte encoding", "[cnitool]") {
  using cni::base64_decode;
  using cni::base64_encode;
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("{\"a\":\"\xff\"}") == "eyJhIjoi/yJ9");
  for (std::string s : {"", "a", "ab", "abc", "abcd", "{\"cniVersion\":\"1.0.0\"}\n"}) {
    CHECK(base64_decode(base64_encode(s)) == s);
  }
  CHECK_FALSE(base64_decode("Zg="));
  CHECK_FALSE(base64_decode("Z=g="));
  CHECK_FALSE(base64_decode("Zm9v!A=="));
}

TEST_CASE("build_plugin_config injects name, version, runtimeConfig and prevResult", "[cnitool]") {
  NetworkList net = make_list("1.0.0");
  auto rt = make_rt();
  json prev = {{"cniVersion", "1.0.0"}, {"ips", json::array()}};

  json c = cni::tool::build_plugin_config(net.conf, net.conf.plugins[0], prev, rt.capability_args);
  CHECK(c["name"] == "testnet");
  CHECK(c["cniVersion"] == "1.0.0");
  CHECK(c["type"] == "p1");
  CHECK(c["foo"] == 1);
  CHECK_FALSE(c.contains("capabilities"));
  // portMappings declared true and supplied; mac declared false; bandwidth not declared.
  CHECK(c["runtimeConfig"] == json{{"portMappings", rt.capability_args["portMappings"]}});
  CHECK(c["prevResult"] == prev);

  json c2 =
      cni::tool::build_plugin_config(net.conf, net.conf.plugins[1], nullptr, rt.capability_args);
  CHECK(c2["runtimeConfig"] == json{{"bandwidth", {{"ingressRate", 1000}}}});
  CHECK_FALSE(c2.contains("prevResult"));

  // No capability matches: no runtimeConfig at all.
  json c3 =
      cni::tool::build_plugin_config(net.conf, net.conf.plugins[2], nullptr, rt.capability_args);
  CHECK_FALSE(c3.contains("runtimeConfig"));

  // GC/STATUS pass no capability args: nothing injected, capabilities still removed.
  json c4 = cni::tool::build_plugin_config(net.conf, net.conf.plugins[0], nullptr, nullptr);
  CHECK_FALSE(c4.contains("runtimeConfig"));
  CHECK_FALSE(c4.contains("capabilities"));

  // A statically configured runtimeConfig is replaced only when capabilities supply one.
  json plugin = {{"type", "p1"}, {"runtimeConfig", {{"static", true}}}};
  CHECK(cni::tool::build_plugin_config(net.conf, plugin, nullptr,
                                       rt.capability_args)["runtimeConfig"] ==
        json{{"static", true}});

  json bad = {{"type", "p1"}, {"capabilities", {"portMappings"}}};
  CHECK_THROWS_AS(cni::tool::build_plugin_config(net.conf, bad, nullptr, rt.capability_args),
                  cni::Error);
}

TEST_CASE("effective cniVersion is the highest of cniVersion and cniVersions", "[cnitool]") {
  NetworkList net = make_list("0.4.0", R"("cniVersions":["1.0.0","0.3.1","9.9.9"],)");
  CHECK(net.conf.cni_version == "1.0.0");
  json c = cni::tool::build_plugin_config(net.conf, net.conf.plugins[0], nullptr, nullptr);
  CHECK(c["cniVersion"] == "1.0.0");
}

TEST_CASE("ADD runs the chain in order and threads prevResult", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({"/nonexistent", bins.dir.path()}, cache,
                                  {{"PATH", "/usr/bin"}, {"CNI_IFNAME", "stale"}}, fake);
  NetworkList net = make_list("1.0.0");
  auto rt = make_rt();

  cni::Result r = runner.add(net, rt);

  REQUIRE(fake.calls.size() == 3);
  CHECK(fake.calls[0].type == "p1");
  CHECK(fake.calls[1].type == "p2");
  CHECK(fake.calls[2].type == "p3");
  for (const auto& c : fake.calls) {
    CHECK(c.command == "ADD");
    CHECK(c.env.at("CNI_CONTAINERID") == "ctr-1");
    CHECK(c.env.at("CNI_NETNS") == "/run/netns/test");
    CHECK(c.env.at("CNI_IFNAME") == "eth0");  // overrides the inherited value
    CHECK(c.env.at("CNI_ARGS") == "IgnoreUnknown=1;K8S_POD_NAME=pod");
    CHECK(c.env.at("CNI_PATH") == "/nonexistent:" + bins.dir.path());
    CHECK(c.env.at("PATH") == "/usr/bin");
    CHECK(c.stdin_conf["cniVersion"] == "1.0.0");
  }
  CHECK_FALSE(fake.calls[0].stdin_conf.contains("prevResult"));
  // p2 got p1's result, p3 got p2's.
  CHECK(fake.calls[1].stdin_conf["prevResult"]["interfaces"] == json::array({{{"name", "p1"}}}));
  CHECK(fake.calls[2].stdin_conf["prevResult"]["interfaces"] ==
        json::array({{{"name", "p1"}}, {{"name", "p2"}}}));
  REQUIRE(r.interfaces.size() == 3);
  CHECK(r.interfaces[2].name == "p3");
  CHECK(r.ips.at(0).address.str() == "10.99.0.5/24");

  // The cache entry holds what a Go runtime expects.
  std::string file = cache_dir / "results/testnet-ctr-1-eth0";
  json entry = json::parse(read_file(file));
  CHECK(entry["kind"] == "cniCacheV1");
  CHECK(entry["containerId"] == "ctr-1");
  CHECK(entry["ifName"] == "eth0");
  CHECK(entry["networkName"] == "testnet");
  CHECK(entry["netns"] == "/run/netns/test");
  CHECK(entry["cniArgs"] == json::array({{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "pod"}}));
  CHECK(entry["capabilityArgs"] == rt.capability_args);
  CHECK(cni::base64_decode(entry["config"].get<std::string>()) == net.bytes);
  CHECK(entry["result"]["interfaces"].size() == 3);
  CHECK(entry["result"]["cniVersion"] == "1.0.0");
  struct stat st {};
  REQUIRE(stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat((cache_dir / "results").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  // No temporary files left next to it.
  CHECK(std::distance(fs::directory_iterator(cache_dir / "results"), fs::directory_iterator{}) ==
        1);
}

TEST_CASE("a failing plugin stops ADD with its code and writes no cache", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  fake.fail["p2/ADD"] = R"({"cniVersion":"1.0.0","code":11,"msg":"busy","details":"try later"})";
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  try {
    runner.add(make_list("1.0.0"), make_rt());
    FAIL("no throw");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 11);
    CHECK(e.msg() == "plugin type=\"p2\" failed (add): busy");
    CHECK(e.details() == "try later");
  }
  CHECK(fake.calls.size() == 2);  // p3 never ran
  CHECK_FALSE(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));
}

TEST_CASE("DEL runs in reverse with the cached result and removes the entry", "[cnitool]") {
  for (std::string version : {"0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    CAPTURE(version);
    PluginBins bins;
    TmpDir cache_dir;
    cni::tool::ResultCache cache(cache_dir.path());
    FakeRunner fake;
    cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
    NetworkList net = make_list(version);
    auto rt = make_rt();
    runner.add(net, rt);
    REQUIRE(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));
    fake.calls.clear();

    runner.del(net, rt);
    REQUIRE(fake.calls.size() == 3);
    CHECK(fake.calls[0].type == "p3");
    CHECK(fake.calls[1].type == "p2");
    CHECK(fake.calls[2].type == "p1");
    for (const auto& c : fake.calls) {
      CHECK(c.command == "DEL");
      if (version == "0.3.1") {
        CHECK_FALSE(c.stdin_conf.contains("prevResult"));  // prevResult on DEL is 0.4.0+
      } else {
        CHECK(c.stdin_conf["prevResult"]["interfaces"].size() == 3);
        CHECK(c.stdin_conf["prevResult"]["cniVersion"] == version);
      }
    }
    CHECK(fake.calls[2].stdin_conf["runtimeConfig"] ==
          json{{"portMappings", rt.capability_args["portMappings"]}});
    CHECK_FALSE(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));

    // A second DEL without cache still calls every plugin and succeeds.
    fake.calls.clear();
    runner.del(net, rt);
    CHECK(fake.calls.size() == 3);
  }
}

TEST_CASE("DEL with a corrupt cache entry drops it and runs without prevResult", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  write_file(cache_dir / "results/testnet-ctr-1-eth0",
             R"({"kind":"cniCacheV1","result":{"cniVersion":"1.0.0","ips":[{"address":"x"}]}})");
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  runner.del(make_list("1.0.0"), make_rt());
  REQUIRE(fake.calls.size() == 3);
  CHECK_FALSE(fake.calls[0].stdin_conf.contains("prevResult"));
  CHECK_FALSE(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));
}

TEST_CASE("CHECK follows the version rules and disableCheck", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  auto rt = make_rt();

  SECTION("0.3.1 refuses CHECK") {
    try {
      runner.check(make_list("0.3.1"), rt);
      FAIL("no throw");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrIncompatibleVersion);
      CHECK_THAT(e.msg(), Catch::Contains("does not support the CHECK command"));
    }
    CHECK(fake.calls.empty());
  }
  SECTION("disableCheck skips every plugin") {
    runner.check(make_list("1.0.0", R"("disableCheck":true,)"), rt);
    CHECK(fake.calls.empty());
  }
  SECTION("forward order with the cached result converted to the list version") {
    runner.add(make_list("0.4.0"), rt);
    fake.calls.clear();
    // The config moved to 1.0.0 after ADD: the 0.4.0 cache is converted.
    runner.check(make_list("1.0.0"), rt);
    REQUIRE(fake.calls.size() == 3);
    CHECK(fake.calls[0].type == "p1");
    CHECK(fake.calls[2].type == "p3");
    for (const auto& c : fake.calls) {
      CHECK(c.command == "CHECK");
      CHECK(c.stdin_conf["prevResult"]["cniVersion"] == "1.0.0");
      CHECK_FALSE(c.stdin_conf["prevResult"]["ips"][0].contains("version"));
    }
  }
}

TEST_CASE("GC deletes stale cached attachments, then sends GC with both keys", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  NetworkList net = make_list("1.1.0");
  auto keep = make_rt();
  auto stale = make_rt();
  stale.container_id = "ctr-2";
  stale.netns = "/run/netns/other";
  stale.args = {{"K8S_POD_NAME", "old"}};
  runner.add(net, keep);
  runner.add(net, stale);
  // An attachment of another network must survive.
  NetworkList other = cni::tool::network_list_from_bytes(
      R"({"cniVersion":"1.1.0","name":"othernet","plugins":[{"type":"p1"}]})");
  runner.add(other, stale);
  fake.calls.clear();

  std::vector<cni::Attachment> valid = {{"ctr-1", "eth0"}};
  runner.gc(net, valid);

  REQUIRE(fake.calls.size() == 6);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(fake.calls[i].command == "DEL");
    CHECK(fake.calls[i].env.at("CNI_CONTAINERID") == "ctr-2");
    CHECK(fake.calls[i].env.at("CNI_NETNS") == "/run/netns/other");  // from the cache
    CHECK(fake.calls[i].env.at("CNI_ARGS") == "K8S_POD_NAME=old");
  }
  CHECK(fake.calls[0].type == "p3");
  json expected = json::array({{{"containerID", "ctr-1"}, {"ifname", "eth0"}}});
  for (size_t i = 3; i < 6; ++i) {
    const auto& c = fake.calls[i];
    CHECK(c.command == "GC");
    CHECK(c.env.at("CNI_CONTAINERID") == "");
    CHECK(c.stdin_conf["cni.dev/valid-attachments"] == expected);
    CHECK(c.stdin_conf["cni.dev/attachments"] == expected);
    CHECK_FALSE(c.stdin_conf.contains("prevResult"));
    CHECK_FALSE(c.stdin_conf.contains("runtimeConfig"));
  }
  CHECK(fake.calls[3].type == "p1");
  CHECK(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));
  CHECK_FALSE(fs::exists(cache_dir / "results/testnet-ctr-2-eth0"));
  CHECK(fs::exists(cache_dir / "results/othernet-ctr-2-eth0"));
}

TEST_CASE("GC without valid attachments deletes all and sends no key", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  NetworkList net = make_list("1.1.0");
  runner.add(net, make_rt());
  fake.calls.clear();
  runner.gc(net, std::nullopt);
  REQUIRE(fake.calls.size() == 6);
  CHECK(fake.calls[0].command == "DEL");
  CHECK(fake.calls[5].command == "GC");
  CHECK_FALSE(fake.calls[5].stdin_conf.contains("cni.dev/valid-attachments"));
  CHECK_FALSE(fake.calls[5].stdin_conf.contains("cni.dev/attachments"));
  CHECK_FALSE(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));
}

TEST_CASE("GC below 1.1.0 only deletes; disableGC does nothing", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  SECTION("1.0.0") {
    NetworkList net = make_list("1.0.0");
    runner.add(net, make_rt());
    fake.calls.clear();
    runner.gc(net, std::vector<cni::Attachment>{});
    REQUIRE(fake.calls.size() == 3);
    for (const auto& c : fake.calls) CHECK(c.command == "DEL");
  }
  SECTION("disableGC") {
    NetworkList net = make_list("1.1.0", R"("disableGC":true,)");
    runner.add(net, make_rt());
    fake.calls.clear();
    runner.gc(net, std::nullopt);
    CHECK(fake.calls.empty());
    CHECK(fs::exists(cache_dir / "results/testnet-ctr-1-eth0"));
  }
}

TEST_CASE("GC collects every error", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  fake.fail["p1/GC"] = R"({"code":5,"msg":"disk"})";
  fake.fail["p3/GC"] = R"({"code":7,"msg":"bad"})";
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  try {
    runner.gc(make_list("1.1.0"), std::nullopt);
    FAIL("no throw");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 5);
    CHECK(e.msg() == "failed to GC plugin type=\"p1\": disk\nfailed to GC plugin type=\"p3\": bad");
  }
  CHECK(fake.calls.size() == 3);  // p2 still ran
}

TEST_CASE("STATUS needs 1.1.0 and stops at the first error", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  runner.status(make_list("1.0.0"));
  CHECK(fake.calls.empty());
  fake.fail["p2/STATUS"] = R"({"code":50,"msg":"no pool"})";
  try {
    runner.status(make_list("1.1.0"));
    FAIL("no throw");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 50);
  }
  REQUIRE(fake.calls.size() == 2);
  CHECK(fake.calls[0].command == "STATUS");
  CHECK(fake.calls[0].stdin_conf["name"] == "testnet");
}

TEST_CASE("VERSION uses libcni's dummy environment", "[cnitool]") {
  PluginBins bins;
  TmpDir cache_dir;
  cni::tool::ResultCache cache(cache_dir.path());
  FakeRunner fake;
  cni::tool::NetworkRunner runner({bins.dir.path()}, cache, {}, fake);
  auto answers = runner.version(make_list("1.0.0"));
  REQUIRE(answers.size() == 3);
  CHECK(answers[1].type == "p2");
  CHECK(answers[1].answer["supportedVersions"].size() == 3);
  CHECK(fake.calls[0].stdin_conf == json{{"cniVersion", "1.1.0"}});
  CHECK(fake.calls[0].env.at("CNI_NETNS") == "dummy");
  CHECK(fake.calls[0].env.at("CNI_PATH") == "dummy");
}

TEST_CASE("result cache reads entries written by libcni", "[cnitool]") {
  TmpDir dir;
  cni::tool::ResultCache cache(dir.path());
  // As Go's json.Marshal(cachedInfo) writes it.
  std::string config = R"({"cniVersion":"1.0.0","name":"gonet","plugins":[{"type":"bridge"}]})";
  json go = {
      {"kind", "cniCacheV1"},
      {"containerId", "abc"},
      {"config", cni::base64_encode(config)},
      {"ifName", "net1"},
      {"networkName", "gonet"},
      {"netns", "/proc/1/ns/net"},
      {"cniArgs", json::array({{"K8S_POD_NAME", "p"}})},
      {"result", {{"cniVersion", "1.0.0"}, {"ips", json::array({{{"address", "10.1.0.2/24"}}})}}}};
  write_file(dir / "results/gonet-abc-net1", go.dump());
  write_file(dir / "results/junk", "not json");
  write_file(dir / "results/noifname",
             json{{"kind", "cniCacheV1"}, {"containerId", "x"}, {"networkName", "gonet"}}.dump());

  auto a = cache.load("gonet", "abc", "net1");
  REQUIRE(a);
  CHECK(a->config == config);
  CHECK(a->netns == "/proc/1/ns/net");
  CHECK(a->cni_args == std::vector<std::pair<std::string, std::string>>{{"K8S_POD_NAME", "p"}});
  CHECK(a->capability_args == json::object());
  CHECK(a->result["ips"][0]["address"] == "10.1.0.2/24");
  CHECK(a->to_json() == go);  // and written back byte-compatible

  auto all = cache.list();
  REQUIRE(all.size() == 1);
  CHECK(all[0].container_id == "abc");

  CHECK_FALSE(cache.load("gonet", "zzz", "net1"));
  CHECK_THROWS_AS(cache.file_path("", "abc", "net1"), cni::Error);

  // The legacy format stored the bare result.
  write_file(dir / "results/gonet-old-eth0", R"({"cniVersion":"0.4.0","ips":[]})");
  auto legacy = cache.load_result("gonet", "old", "eth0");
  REQUIRE(legacy);
  CHECK((*legacy)["cniVersion"] == "0.4.0");

  cache.remove("gonet", "abc", "net1");
  cache.remove("gonet", "abc", "net1");  // missing is fine
  CHECK_FALSE(fs::exists(dir / "results/gonet-abc-net1"));
}

TEST_CASE("load_network_list finds a network like libcni", "[cnitool]") {
  TmpDir dir;
  write_file(dir / "10-a.conflist",
             R"({"cniVersion":"1.0.0","name":"alpha","plugins":[{"type":"p1"}]})");
  // Same name in a .conf: the .conflist wins.
  write_file(dir / "05-a.conf", R"({"cniVersion":"0.4.0","name":"alpha","type":"p9"})");
  write_file(dir / "20-b.conf", R"({"cniVersion":"0.4.0","name":"beta","type":"p2","x":1})");
  write_file(dir / "30-broken.conflist", "{not json");
  write_file(dir / "40-c.conflist", R"({"cniVersion":"1.1.0","name":"gamma","plugins":[]})");
  write_file(dir / "50-d.conflist",
             R"({"cniVersion":"1.1.0","name":"delta","plugins":[{"type":"p1"}]})");
  write_file(dir / "delta/1.conf", R"({"type":"p2"})");
  write_file(dir / "delta/2.conf", R"({"type":"p3"})");
  write_file(dir / "60-e.conflist",
             R"({"cniVersion":"1.1.0","name":"epsilon","loadOnlyInlinedPlugins":true,)"
             R"("plugins":[{"type":"p1"}]})");
  write_file(dir / "epsilon/1.conf", R"({"type":"p2"})");

  auto a = cni::tool::load_network_list(dir.path(), "alpha");
  CHECK(a.conf.plugins.at(0)["type"] == "p1");
  CHECK(a.conf.cni_version == "1.0.0");
  CHECK(a.bytes == read_file(dir / "10-a.conflist"));
  CHECK(a.source == dir / "10-a.conflist");

  auto b = cni::tool::load_network_list(dir.path(), "beta");
  REQUIRE(b.conf.plugins.size() == 1);
  CHECK(b.conf.plugins[0]["x"] == 1);
  CHECK(b.conf.cni_version == "0.4.0");
  // libcni caches the list it synthesizes around a single config.
  json wrapped = json::parse(b.bytes);
  CHECK(wrapped["name"] == "beta");
  CHECK(wrapped["cniVersion"] == "0.4.0");
  CHECK(wrapped["plugins"][0]["type"] == "p2");

  auto d = cni::tool::load_network_list(dir.path(), "delta");
  REQUIRE(d.conf.plugins.size() == 3);
  CHECK(d.conf.plugins[1]["type"] == "p2");
  CHECK(d.conf.plugins[2]["type"] == "p3");

  auto e = cni::tool::load_network_list(dir.path(), "epsilon");
  CHECK(e.conf.plugins.size() == 1);

  CHECK_THROWS_AS(cni::tool::load_network_list(dir.path(), "gamma"), cni::Error);
  try {
    cni::tool::load_network_list(dir.path(), "nope");
    FAIL("no throw");
  } catch (const cni::Error& err) {
    CHECK(err.code() == cni::kErrInvalidConfig);
    CHECK_THAT(err.msg(),
               Catch::StartsWith("no net configuration with name \"nope\" in " + dir.path()) &&
                   Catch::Contains("30-broken.conflist"));
  }
  TmpDir empty;
  CHECK_THROWS_WITH(cni::tool::load_network_list(empty.path(), "x"),
                    "no net configurations found in " + empty.path());
}

TEST_CASE("cnitool_main drives a chain from the environment", "[cnitool]") {
  PluginBins bins;
  TmpDir conf_dir;
  TmpDir cache_dir;
  write_file(conf_dir / "net.conflist",
             R"({"cniVersion":"1.0.0","name":"clinet","plugins":[{"type":"p1",)"
             R"("capabilities":{"mac":true}},{"type":"p2"}]})");
  cni::EnvMap env = {{"NETCONFPATH", conf_dir.path()},
                     {"CNI_PATH", bins.dir.path()},
                     {"CNI_CACHE_DIR", cache_dir.path()},
                     {"CAP_ARGS", R"({"mac":"c2:00:00:00:00:01"})"},
                     {"CNI_ARGS", "K8S_POD_NAME=x"}};
  FakeRunner fake;
  auto run = [&](std::vector<const char*> argv, std::string* out_text = nullptr,
                 std::string* err_text = nullptr) {
    std::ostringstream out, err;
    argv.insert(argv.begin(), "cnitool");
    int rc = cni::tool::cnitool_main(static_cast<int>(argv.size()), argv.data(), env, "/run", out,
                                     err, fake);
    if (out_text) *out_text = out.str();
    if (err_text) *err_text = err.str();
    return rc;
  };

  std::string out, err;
  REQUIRE(run({"add", "clinet", "netns/x"}, &out, &err) == 0);
  std::string id = cni::tool::container_id_for_netns("/run/netns/x");
  json printed = json::parse(out);
  CHECK(printed["cniVersion"] == "1.0.0");
  CHECK(printed["interfaces"].size() == 2);
  REQUIRE(fake.calls.size() == 2);
  CHECK(fake.calls[0].env.at("CNI_NETNS") == "/run/netns/x");
  CHECK(fake.calls[0].env.at("CNI_CONTAINERID") == id);
  CHECK(fake.calls[0].env.at("CNI_IFNAME") == "eth0");
  CHECK(fake.calls[0].env.at("CNI_ARGS") == "K8S_POD_NAME=x");
  CHECK(fake.calls[0].stdin_conf["runtimeConfig"] == json{{"mac", "c2:00:00:00:00:01"}});
  CHECK(fs::exists(cache_dir / ("results/clinet-" + id + "-eth0")));

  // -i overrides CNI_IFNAME, also after the subcommand.
  env["CNI_IFNAME"] = "net5";
  fake.calls.clear();
  REQUIRE(run({"del", "clinet", "/run/netns/x", "-i", "eth0"}) == 0);
  CHECK(fake.calls.at(0).env.at("CNI_IFNAME") == "eth0");
  CHECK(fake.calls.at(0).type == "p2");
  CHECK_FALSE(fs::exists(cache_dir / ("results/clinet-" + id + "-eth0")));

  fake.calls.clear();
  REQUIRE(run({"version", "clinet"}, &out) == 0);
  json v = json::parse(out);
  CHECK(v["cniVersion"] == "1.0.0");
  CHECK(v["plugins"][0]["type"] == "p1");
  CHECK(v["plugins"][0]["supportedVersions"].size() == 3);

  fake.fail["p1/ADD"] = R"({"code":7,"msg":"no way","details":"really"})";
  REQUIRE(run({"add", "clinet", "/run/netns/y"}, &out, &err) == 1);
  CHECK(out.empty());
  CHECK(err == "cnitool: plugin type=\"p1\" failed (add): no way; really\n");

  CHECK(run({"add", "nosuchnet", "/run/netns/y"}, &out, &err) == 1);
  CHECK_THAT(err, Catch::Contains("no net configuration with name \"nosuchnet\""));
  CHECK(run({"add", "clinet"}, &out, &err) == 1);  // netns missing
  CHECK(run({"bogus", "clinet", "x"}, &out, &err) == 1);

  env["CAP_ARGS"] = "[1]";
  CHECK(run({"add", "clinet", "/run/netns/z"}, &out, &err) == 1);
  CHECK_THAT(err, Catch::Contains("CAP_ARGS"));
}
