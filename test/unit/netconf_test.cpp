#include <catch2/catch.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"

namespace {

cni::Error netconf_error(const std::string& data) {
  try {
    cni::parse_netconf(data, cni::supported_versions());
  } catch (const cni::Error& e) {
    return e;
  }
  FAIL("accepted " << data);
  return cni::Error(0, "");
}

}  // namespace

TEST_CASE("a runtime's config is parsed and unknown keys kept", "[netconf]") {
  auto c = cni::parse_netconf(R"({
    "cniVersion": "1.0.0", "name": "net-a", "type": "macvlan", "master": "eth1",
    "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"},
    "dns": {"nameservers": ["192.0.2.53"], "search": ["svc.local"]},
    "args": {"cni": {"ips": ["10.1.0.7/24"]}},
    "runtimeConfig": {"mac": "c2:11:22:33:44:55"},
    "prevResult": {"ips": [{"address": "10.1.0.7/24"}]}
  })",
                              cni::supported_versions());
  CHECK(c.cni_version == "1.0.0");
  CHECK(c.name == "net-a");
  CHECK(c.type == "macvlan");
  CHECK(c.raw["master"] == "eth1");
  CHECK(c.ipam["type"] == "host-local");
  CHECK(c.dns.nameservers == std::vector<std::string>{"192.0.2.53"});
  CHECK(c.args_cni_ips() == std::vector<std::string>{"10.1.0.7/24"});
  CHECK(c.runtime("mac") == "c2:11:22:33:44:55");
  CHECK(c.runtime("ips").is_null());
  REQUIRE(c.prev_result);
  CHECK(c.prev_result->cni_version == "1.0.0");
  REQUIRE(c.prev_result->ips.size() == 1);
  CHECK(c.prev_result->ips[0].address.str() == "10.1.0.7/24");
}

TEST_CASE("decode failures are code 6", "[netconf]") {
  for (const char* bad : {"", "{", "[1,2]", "\"x\"", "{\"a\":1,}", "nul"}) {
    CHECK(netconf_error(bad).code() == cni::kErrDecode);
  }
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto e = netconf_error(R"({"cniVersion":"1.0.0","name":"n","x":)" + deep + "}");
  CHECK(e.code() == cni::kErrDecode);
  CHECK_THAT(e.msg(), Catch::Contains("nested"));
}

TEST_CASE("missing or unsupported cniVersion is code 1", "[netconf]") {
  auto missing = netconf_error(R"({"name":"n","type":"x"})");
  CHECK(missing.code() == cni::kErrIncompatibleVersion);
  CHECK_THAT(missing.msg(), Catch::Contains("0.1.0"));
  CHECK(netconf_error(R"({"cniVersion":"0.2.0","name":"n"})").code() == 1);
  CHECK(netconf_error(R"({"cniVersion":"9.9.9","name":"n"})").code() == 1);
}

TEST_CASE("bad well-known keys are code 7 naming the key", "[netconf]") {
  struct Case {
    const char* json;
    const char* key;
  };
  for (auto c :
       {Case{R"({"cniVersion":"1.0.0","name":"../etc"})", "\"name\""},
        Case{R"({"cniVersion":"1.0.0","name":""})", "\"name\""},
        Case{R"({"cniVersion":"1.0.0","name":"a\nb"})", "\"name\""},
        Case{R"({"cniVersion":1,"name":"n"})", "\"cniVersion\""},
        Case{R"({"cniVersion":"1.0.0","name":"n","ipam":"x"})", "\"ipam\""},
        Case{R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":[]})", "\"runtimeConfig\""},
        Case{R"({"cniVersion":"1.0.0","name":"n","prevResult":7})", "\"prevResult\""},
        Case{R"({"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"x"}})", "dns"}}) {
    auto e = netconf_error(c.json);
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains(c.key));
  }
}

TEST_CASE("conflists pick the highest supported version; .conf is wrapped", "[netconf]") {
  auto l = cni::parse_conflist(R"({"name":"n","cniVersion":"0.4.0",
      "cniVersions":["1.0.0","1.1.0","2.0.0"], "disableCheck": true,
      "plugins":[{"type":"macvlan"},{"type":"bandwidth"}]})",
                               cni::supported_versions());
  CHECK(l.cni_version == "1.1.0");
  CHECK(l.disable_check);
  CHECK_FALSE(l.disable_gc);
  CHECK(l.plugins.size() == 2);
  auto single = cni::parse_conflist(R"({"name":"n","cniVersion":"0.3.1","type":"macvlan"})",
                                    cni::supported_versions());
  REQUIRE(single.plugins.size() == 1);
  CHECK(single.plugins[0]["type"] == "macvlan");
  CHECK(single.cni_version == "0.3.1");
  try {
    cni::parse_conflist(R"({"name":"n","cniVersion":"1.0.0","plugins":[{"x":1}]})",
                        cni::supported_versions());
    FAIL("plugin without type accepted");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 7);
    CHECK_THAT(e.msg(), Catch::Contains("plugins[0].type"));
  }
  try {
    cni::parse_conflist(R"({"name":"n","cniVersions":["0.2.0"],"plugins":[{"type":"x"}]})",
                        cni::supported_versions());
    FAIL("0.2.0 accepted");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 1);
  }
}

TEST_CASE("GC attachments: absent is not empty; the legacy key is read", "[netconf]") {
  auto v = cni::supported_versions();
  auto none = cni::parse_netconf(R"({"cniVersion":"1.1.0","name":"n"})", v);
  CHECK_FALSE(cni::valid_attachments(none).has_value());
  auto empty =
      cni::parse_netconf(R"({"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[]})", v);
  REQUIRE(cni::valid_attachments(empty).has_value());
  CHECK(cni::valid_attachments(empty)->empty());
  auto legacy = cni::parse_netconf(
      R"({"cniVersion":"1.1.0","name":"n","cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}]})",
      v);
  REQUIRE(cni::valid_attachments(legacy).has_value());
  CHECK(*cni::valid_attachments(legacy) == std::vector<cni::Attachment>{{"c1", "eth0"}});
  auto bad = cni::parse_netconf(
      R"({"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c1"}]})", v);
  CHECK_THROWS_AS(cni::valid_attachments(bad), cni::Error);
}
