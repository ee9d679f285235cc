#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "plugins/macvlan/macvlan_config.h"

namespace {

using macvlan::MacSource;
using macvlan::MacvlanConfig;
using nlohmann::json;

json base() {
  return json{{"cniVersion", "1.1.0"},
              {"name", "mvnet"},
              {"type", "macvlan"},
              {"ipam", {{"type", "host-local"}, {"subnet", "192.0.2.0/24"}}}};
}

MacvlanConfig parse(const json& j, const std::string& cni_args = "") {
  cni::NetConf conf = cni::netconf_from_json(j, cni::supported_versions());
  return macvlan::parse_config(conf, cni::parse_cni_args(cni_args));
}

cni::Error parse_error(const json& j, const std::string& cni_args = "") {
  try {
    parse(j, cni_args);
  } catch (const cni::Error& e) {
    return e;
  }
  FAIL("accepted " << j.dump() << " with CNI_ARGS " << cni_args);
  return cni::Error(0, "");
}

json with(json j, const std::string& key, json value) {
  j[key] = std::move(value);
  return j;
}

}  // namespace

TEST_CASE("macvlan config defaults", "[macvlan][config]") {
  MacvlanConfig c = parse(base());
  CHECK(c.master.empty());
  CHECK(c.mode == cni::MacvlanMode::kBridge);
  CHECK(c.mtu == 0);
  CHECK_FALSE(c.mac);
  CHECK(c.mac_source == MacSource::kNone);
  CHECK_FALSE(c.link_in_container);
  CHECK_FALSE(c.bcqueuelen);
  CHECK_FALSE(c.l2_only);
  CHECK(c.ipam_type == "host-local");
}

TEST_CASE("macvlan config reads every key", "[macvlan][config]") {
  json j = base();
  j["master"] = "eth1";
  j["mode"] = "vepa";
  j["mtu"] = 1400;
  j["mac"] = "C2:11:22:33:44:55";
  j["linkInContainer"] = true;
  j["bcqueuelen"] = 4096;
  MacvlanConfig c = parse(j);
  CHECK(c.master == "eth1");
  CHECK(c.mode == cni::MacvlanMode::kVepa);
  CHECK(c.mtu == 1400);
  REQUIRE(c.mac);
  CHECK(c.mac->str() == "c2:11:22:33:44:55");
  CHECK(c.mac_source == MacSource::kConfig);
  CHECK(c.link_in_container);
  REQUIRE(c.bcqueuelen);
  CHECK(*c.bcqueuelen == 4096u);
}

TEST_CASE("macvlan modes", "[macvlan][config]") {
  CHECK(parse(with(base(), "mode", "bridge")).mode == cni::MacvlanMode::kBridge);
  CHECK(parse(with(base(), "mode", "private")).mode == cni::MacvlanMode::kPrivate);
  CHECK(parse(with(base(), "mode", "vepa")).mode == cni::MacvlanMode::kVepa);
  CHECK(parse(with(base(), "mode", "passthru")).mode == cni::MacvlanMode::kPassthru);
  // Upstream's modeFromString: "" is bridge.
  CHECK(parse(with(base(), "mode", "")).mode == cni::MacvlanMode::kBridge);

  for (const char* bad : {"source", "Bridge", "802.1q", " bridge"}) {
    auto e = parse_error(with(base(), "mode", bad));
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains("\"mode\""));
    CHECK_THAT(e.msg(), Catch::Contains(std::string("\"") + bad + "\""));
  }
  auto e = parse_error(with(base(), "mode", 3));
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"mode\""));
}

TEST_CASE("macvlan mtu must be a non-negative integer", "[macvlan][config]") {
  CHECK(parse(with(base(), "mtu", 0)).mtu == 0);
  CHECK(parse(with(base(), "mtu", 9000)).mtu == 9000);
  for (const json& bad : {json(-1), json(1500.5), json("1500"), json(true)}) {
    auto e = parse_error(with(base(), "mtu", bad));
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains("\"mtu\""));
    CHECK_THAT(e.msg(), Catch::Contains(bad.dump()));
  }
}

TEST_CASE("macvlan bcqueuelen is a uint32; 0 means the kernel default", "[macvlan][config]") {
  CHECK_FALSE(parse(with(base(), "bcqueuelen", 0)).bcqueuelen);
  CHECK(*parse(with(base(), "bcqueuelen", 4294967295u)).bcqueuelen == 4294967295u);
  for (const json& bad : {json(-1), json(4294967296u), json("100")}) {
    auto e = parse_error(with(base(), "bcqueuelen", bad));
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains("\"bcqueuelen\""));
    CHECK_THAT(e.msg(), Catch::Contains(bad.dump()));
  }
}

TEST_CASE("macvlan linkInContainer and master types", "[macvlan][config]") {
  auto e = parse_error(with(base(), "linkInContainer", "yes"));
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"linkInContainer\""));
  CHECK_THAT(e.msg(), Catch::Contains("\"yes\""));

  e = parse_error(with(base(), "master", 7));
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"master\""));
}

TEST_CASE("macvlan mac must be a unicast Ethernet address", "[macvlan][config]") {
  CHECK(parse(with(base(), "mac", "02-00-00-00-00-01")).mac->str() == "02:00:00:00:00:01");
  // Empty means "not given", as upstream's omitempty.
  CHECK_FALSE(parse(with(base(), "mac", "")).mac);
  for (const char* bad : {"zz:11:22:33:44:55", "c2:11:22:33:44", "01:00:5e:00:00:01",
                          "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"}) {
    auto e = parse_error(with(base(), "mac", bad));
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains("\"mac\""));
    CHECK_THAT(e.msg(), Catch::Contains(bad));
  }
}

TEST_CASE("macvlan MAC precedence: runtimeConfig > CNI_ARGS > config", "[macvlan][config]") {
  json j = with(base(), "mac", "02:00:00:00:00:01");
  MacvlanConfig c = parse(j);
  CHECK(c.mac->str() == "02:00:00:00:00:01");
  CHECK(c.mac_source == MacSource::kConfig);

  c = parse(j, "IgnoreUnknown=1;MAC=02:00:00:00:00:02");
  CHECK(c.mac->str() == "02:00:00:00:00:02");
  CHECK(c.mac_source == MacSource::kCniArgs);

  j["runtimeConfig"] = {{"mac", "02:00:00:00:00:03"}};
  c = parse(j, "MAC=02:00:00:00:00:02");
  CHECK(c.mac->str() == "02:00:00:00:00:03");
  CHECK(c.mac_source == MacSource::kRuntimeConfig);

  // runtimeConfig alone, and CNI_ARGS alone.
  c = parse(with(base(), "runtimeConfig", {{"mac", "02:00:00:00:00:04"}}));
  CHECK(c.mac->str() == "02:00:00:00:00:04");
  c = parse(base(), "MAC=02:00:00:00:00:05");
  CHECK(c.mac->str() == "02:00:00:00:00:05");
  CHECK(c.mac_source == MacSource::kCniArgs);
  // An empty MAC= does not override.
  c = parse(with(base(), "mac", "02:00:00:00:00:01"), "MAC=");
  CHECK(c.mac->str() == "02:00:00:00:00:01");
}

TEST_CASE("macvlan bad MAC from CNI_ARGS or runtimeConfig", "[macvlan][config]") {
  auto e = parse_error(base(), "MAC=nonsense");
  CHECK(e.code() == cni::kErrInvalidEnv);
  CHECK_THAT(e.msg(), Catch::Contains("CNI_ARGS MAC"));
  CHECK_THAT(e.msg(), Catch::Contains("nonsense"));

  e = parse_error(with(base(), "runtimeConfig", {{"mac", "03:00:00:00:00:01"}}));
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"runtimeConfig.mac\""));
  CHECK_THAT(e.msg(), Catch::Contains("03:00:00:00:00:01"));
  CHECK_THAT(e.msg(), Catch::Contains("multicast"));

  // A bad lower-priority source is still a config error, even when overridden.
  json j = with(base(), "mac", "bogus");
  j["runtimeConfig"] = {{"mac", "02:00:00:00:00:03"}};
  e = parse_error(j);
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"mac\""));
}

TEST_CASE("macvlan ipam: required, {} is L2 only, type needed otherwise", "[macvlan][config]") {
  json j = base();
  j.erase("ipam");
  auto e = parse_error(j);
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"ipam\""));
  CHECK_THAT(e.msg(), Catch::Contains("required"));

  MacvlanConfig c = parse(with(base(), "ipam", json::object()));
  CHECK(c.l2_only);
  CHECK(c.ipam_type.empty());

  e = parse_error(with(base(), "ipam", {{"subnet", "192.0.2.0/24"}}));
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"ipam.type\""));

  e = parse_error(with(base(), "ipam", "host-local"));
  CHECK(e.code() == cni::kErrInvalidConfig);
  CHECK_THAT(e.msg(), Catch::Contains("\"ipam\""));
}

TEST_CASE("macvlan lenient IPAM choice for DEL, STATUS and GC", "[macvlan][config]") {
  json j = base();
  j.erase("ipam");
  cni::NetConf conf = cni::netconf_from_json(j, cni::supported_versions());
  CHECK(macvlan::parse_ipam_choice(conf).l2_only);
  conf = cni::netconf_from_json(base(), cni::supported_versions());
  auto choice = macvlan::parse_ipam_choice(conf);
  CHECK_FALSE(choice.l2_only);
  CHECK(choice.type == "host-local");
}

TEST_CASE("the example macvlan conflists parse", "[macvlan][config]") {
  for (const char* name : {"macvlan.conflist", "macvlan-l2.conflist"}) {
    INFO(name);
    std::ifstream in(std::string(STRAIT_FIXTURES_DIR) + "/../../conf/net.d/" + name);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    cni::NetConfList list = cni::parse_conflist(text.str(), cni::supported_versions());
    REQUIRE(list.plugins.size() == 1);
    // What a runtime hands the plugin: the list's name and version injected.
    json plugin = list.plugins[0];
    plugin["name"] = list.name;
    plugin["cniVersion"] = list.cni_version;
    MacvlanConfig c = parse(plugin);
    CHECK(c.master == "eth1");
    CHECK(c.mode == cni::MacvlanMode::kBridge);
    CHECK(c.l2_only == (std::string(name) == "macvlan-l2.conflist"));
  }
}
