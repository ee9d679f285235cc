#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnitool/result_cache.h"
#include "libcni/core/error.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "plugins/macvlan/macvlan_config.h"
#include "test/support/temp_dir.h"

// Regression tests for faults the robustness harnesses (test/integration/hostile_input_test,
// fault_injection_test, test/fuzz) found.
namespace {

cni::NetConf macvlan_conf(const nlohmann::json& master) {
  nlohmann::json j = {{"cniVersion", "1.1.0"},
                      {"name", "n"},
                      {"type", "macvlan"},
                      {"master", master},
                      {"ipam", {{"type", "host-local"}, {"subnet", "192.0.2.0/24"}}}};
  return cni::netconf_from_json(j, cni::supported_versions());
}

int code_of(const cni::NetConf& conf) {
  try {
    (void)macvlan::parse_config(conf, {});
  } catch (const cni::Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("\"master\"") != std::string::npos);
    return e.code();
  }
  return 0;
}

}  // namespace

// hostile/macvlan/master-too-long: a 300-byte master reached the kernel lookup and came back
// as code 999 "failed to find link ...: Numerical result out of range".
TEST_CASE("macvlan: a master no device can be named is a config fault", "[macvlan][regression]") {
  CHECK(code_of(macvlan_conf(std::string(300, 'a'))) == cni::kErrInvalidConfig);
  CHECK(code_of(macvlan_conf("abcdefghijklmnop")) == cni::kErrInvalidConfig);  // 16 bytes
  CHECK(code_of(macvlan_conf("../../lo")) == cni::kErrInvalidConfig);
  CHECK(code_of(macvlan_conf("eth 1")) == cni::kErrInvalidConfig);
  CHECK(code_of(macvlan_conf("abcdefghijklmno")) == 0);  // 15 bytes
  CHECK(code_of(macvlan_conf("")) == 0);                 // the default route's device
}

// fault_injection_test (cnitool killed at its fsync/rename during ADD): the temporary file of
// the cache entry's atomic write stayed in results/ forever; neither DEL nor GC removed it.
TEST_CASE("cnitool cache: removing an entry also removes its leftover temporary files",
          "[cnitool][regression]") {
  namespace fs = std::filesystem;
  const strait::unit::TmpDir root;  // removed on every path out of the test
  cni::tool::ResultCache cache(root.path());
  fs::create_directories(cache.results_dir());
  const fs::path dir(cache.results_dir());
  for (const char* name :
       {"net-c1-eth0.tmp-AbC123", "net-c1-eth0.tmp-zzzzzz", "net-c1-eth0",
        "net-c1-eth01.tmp-AbC123", "net-c2-eth0.tmp-AbC123", "net-c1-eth0.tmp-toolong1"}) {
    std::ofstream(dir / name) << "{}";
  }
  cache.remove("net", "c1", "eth0");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"net-c1-eth0.tmp-toolong1", "net-c1-eth01.tmp-AbC123",
                                         "net-c2-eth0.tmp-AbC123"});
}

// test/fuzz netconf_fuzz: a number too large for a double ("-8800000e000000000069032")
// made nlohmann::json throw out_of_range (406), not parse_error, and it left the parser as an
// internal error (999) instead of a decoding failure (6).
TEST_CASE("config: a number no double holds is a decoding failure", "[netconf][regression]") {
  for (std::string text :
       {std::string("-8800000e000000000069032\0"
                    "12106",
                    30),
        std::string(R"({"cniVersion":"1.1.0","name":"n","type":"macvlan","mtu":1e999})")}) {
    INFO(text);
    try {
      (void)cni::parse_netconf(text, cni::supported_versions());
      FAIL("accepted");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrDecode);
      CHECK(std::string(e.what()).find("number overflow") != std::string::npos);
    }
    try {
      (void)cni::parse_conflist(text, cni::supported_versions());
      FAIL("accepted");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrDecode);
    }
  }
}
