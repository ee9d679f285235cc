#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "plugins/sriov/sriov_config.h"
#include "plugins/sriov/vf_record.h"
#include "plugins/sriov/vf_release.h"

namespace {

using nlohmann::json;
using sriov::SriovConfig;

json base() {
  return json{{"cniVersion", "1.1.0"},
              {"name", "sriov-net"},
              {"type", "sriov"},
              {"deviceID", "0000:af:06.0"}};
}

SriovConfig parse(const json& j, const std::string& cni_args = "") {
  cni::NetConf conf = cni::netconf_from_json(j, cni::supported_versions());
  return sriov::parse_config(conf, cni::parse_cni_args(cni_args));
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

json with(json j, const json& patch) {
  j.merge_patch(patch);
  return j;
}

}  // namespace

TEST_CASE("sriov config: defaults change nothing but what sriov-cni always does",
          "[sriov][config]") {
  const SriovConfig c = parse(base());
  CHECK(c.device_id == "0000:af:06.0");
  CHECK(c.device_id_key == "deviceID");
  CHECK(c.vf_settings().empty());
  CHECK(c.l2_only);
  CHECK(c.data_dir == "/var/lib/cni/sriov");
  CHECK(c.sysfs_root == "/sys");
}

TEST_CASE("sriov config: every key", "[sriov][config]") {
  const SriovConfig c = parse(with(base(), {{"vlan", 100},
                                            {"vlanQoS", 5},
                                            {"vlanProto", "802.1AD"},
                                            {"mac", "02:11:22:33:44:55"},
                                            {"spoofchk", "off"},
                                            {"trust", "on"},
                                            {"link_state", "disable"},
                                            {"min_tx_rate", 100},
                                            {"max_tx_rate", 1000},
                                            {"ipam", {{"type", "host-local"}}},
                                            {"dataDir", "/run/sriov-test"},
                                            {"sysfsRoot", "/tmp/fake-sys"}}));
  const cni::VfSettings s = c.vf_settings();
  CHECK(s.vlan == cni::VfVlan{100, 5, cni::kVlanProto8021AD});
  CHECK(s.mac == cni::MacAddress::parse("02:11:22:33:44:55"));
  CHECK(s.spoofchk == false);
  CHECK(s.trust == true);
  CHECK(s.link_state == cni::VfLinkState::kDisable);
  CHECK(s.rate == cni::VfRate{100, 1000});
  CHECK_FALSE(c.l2_only);
  CHECK(c.ipam_type == "host-local");
  CHECK(c.data_dir == "/run/sriov-test");
  CHECK(c.sysfs_root == "/tmp/fake-sys");
  // vlan alone: qos 0, 802.1Q; one rate alone: the other 0 (no limit).
  CHECK(parse(with(base(), {{"vlan", 0}})).vlan == cni::VfVlan{0, 0, cni::kVlanProto8021Q});
  CHECK(parse(with(base(), {{"max_tx_rate", 50}})).rate == cni::VfRate{0, 50});
  CHECK(parse(with(base(), {{"min_tx_rate", 50}})).rate == cni::VfRate{50, 0});
  // max 0 is "no limit", so any floor is fine.
  CHECK(parse(with(base(), {{"min_tx_rate", 50}, {"max_tx_rate", 0}})).rate == cni::VfRate{50, 0});
}

TEST_CASE("sriov config: deviceID from runtimeConfig > deviceID > pciBusID, lowercase",
          "[sriov][config]") {
  json j = base();
  j.erase("deviceID");
  j["pciBusID"] = "0000:AF:06.1";
  CHECK(parse(j).device_id == "0000:af:06.1");
  CHECK(parse(j).device_id_key == "pciBusID");
  j["deviceID"] = "0000:af:06.2";
  CHECK(parse(j).device_id == "0000:af:06.2");
  j["runtimeConfig"] = {{"deviceID", "0000:af:06.3"}};
  CHECK(parse(j).device_id == "0000:af:06.3");
  CHECK(parse(j).device_id_key == "runtimeConfig.deviceID");
}

TEST_CASE("sriov config: MAC precedence runtimeConfig.mac > CNI_ARGS MAC= > mac",
          "[sriov][config]") {
  json j = with(base(), {{"mac", "02:00:00:00:00:01"}});
  CHECK(parse(j).mac.mac == cni::MacAddress::parse("02:00:00:00:00:01"));
  CHECK(parse(j, "IgnoreUnknown=1;MAC=02:00:00:00:00:02").mac.mac ==
        cni::MacAddress::parse("02:00:00:00:00:02"));
  j["runtimeConfig"] = {{"mac", "02:00:00:00:00:03"}};
  CHECK(parse(j, "MAC=02:00:00:00:00:02").mac.mac == cni::MacAddress::parse("02:00:00:00:00:03"));
  CHECK(parse(j).mac.source == cni::MacSource::kRuntimeConfig);
}

TEST_CASE("sriov config: bad values are code 7 naming the key and value", "[sriov][config]") {
  struct Bad {
    json patch;
    std::string msg;
  };
  const Bad cases[] = {
      {{{"deviceID", "0000:af:06"}}, "\"deviceID\": \"0000:af:06\" is not a PCI address"},
      {{{"deviceID", "../../etc/passwd"}},
       "\"deviceID\": \"../../etc/passwd\" is not a PCI address"},
      {{{"deviceID", nullptr}}, "\"deviceID\": is required"},
      {{{"runtimeConfig", {{"deviceID", "af:06.0"}}}},
       "\"runtimeConfig.deviceID\": \"af:06.0\" is not a PCI address"},
      {{{"vlan", 4095}}, "\"vlan\": 4095 is out of range [0, 4094]"},
      {{{"vlan", -1}}, "\"vlan\": -1 is out of range [0, 4094]"},
      {{{"vlan", "100"}}, "\"vlan\": must be an integer"},
      {{{"vlanQoS", 3}}, "\"vlanQoS\": 3 needs \"vlan\""},
      {{{"vlan", 0}, {"vlanQoS", 3}}, "\"vlanQoS\": 3 needs a non-zero \"vlan\""},
      {{{"vlan", 10}, {"vlanQoS", 8}}, "\"vlanQoS\": 8 is out of range [0, 7]"},
      {{{"vlanProto", "802.1ad"}}, "\"vlanProto\": \"802.1ad\" needs \"vlan\""},
      {{{"vlan", 0}, {"vlanProto", "802.1ad"}},
       "\"vlanProto\": \"802.1ad\" needs a non-zero \"vlan\""},
      {{{"vlan", 10}, {"vlanProto", "802.1x"}},
       "\"vlanProto\": \"802.1x\" is not \"802.1Q\" or \"802.1ad\""},
      {{{"spoofchk", "yes"}}, "\"spoofchk\": \"yes\" is not \"on\" or \"off\""},
      {{{"trust", true}}, "\"trust\": must be a string"},
      {{{"link_state", "up"}}, "\"link_state\": \"up\" is not \"auto\", \"enable\" or \"disable\""},
      {{{"min_tx_rate", 500}, {"max_tx_rate", 100}},
       "\"min_tx_rate\": 500 is larger than \"max_tx_rate\": 100"},
      {{{"max_tx_rate", -5}}, "\"max_tx_rate\": -5 must not be negative"},
      {{{"mac", "01:00:5e:00:00:01"}}, "\"mac\": \"01:00:5e:00:00:01\" is a multicast address"},
      {{{"dataDir", "relative/dir"}}, "\"dataDir\": \"relative/dir\" must be an absolute path"},
      {{{"ipam", {{"subnet", "10.0.0.0/24"}}}}, "\"ipam.type\": is required"},
  };
  for (const Bad& b : cases) {
    INFO(b.patch.dump());
    json j = base();
    j.merge_patch(b.patch);
    const cni::Error e = parse_error(j);
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains(b.msg));
  }
  // A bad CNI_ARGS MAC is an environment fault.
  CHECK(parse_error(base(), "MAC=zz").code() == cni::kErrInvalidEnv);
}

TEST_CASE("sriov records: JSON round trip, and what restore sends", "[sriov][config]") {
  sriov::VfRecord r;
  r.device_id = "0000:af:06.0";
  r.container_id = "abc";
  r.ifname = "net1";
  r.netns = "/run/netns/p";
  r.netns_inode = 4026532000u;
  r.pf = "enp175s0f1";
  r.vf_index = 3;
  r.temp_name = "sv0123456789abc";
  r.saved.vf = {.index = 3,
                .mac = cni::MacAddress::parse("02:00:00:00:00:03"),
                .vlan = 7,
                .qos = 1,
                .vlan_proto = 0,
                .spoofchk = std::nullopt,
                .trust = std::nullopt,
                .min_tx_rate = 1,
                .max_tx_rate = 2,
                .link_state = cni::VfLinkState::kEnable};
  r.saved.host_name = "enp175s0f1v3";
  r.saved.mac = "02:00:00:00:00:99";
  r.saved.mtu = 9000;
  r.saved.up = true;
  r.applied = {.mac = cni::MacAddress::parse("02:aa:00:00:00:01"),
               .vlan = cni::VfVlan{100, 0, cni::kVlanProto8021AD},
               .rate = cni::VfRate{0, 100},
               .spoofchk = true,
               .trust = true,
               .link_state = cni::VfLinkState::kDisable};
  const sriov::VfRecord back = sriov::record_from_json(sriov::record_to_json(r));
  CHECK(sriov::record_to_json(back) == sriov::record_to_json(r));
  CHECK(back.saved.vf == r.saved.vf);
  CHECK(back.applied == r.applied);
  CHECK(back.owned_by("abc", "net1"));
  CHECK_FALSE(back.owned_by("abc", "net2"));

  // Restore: the applied settings at their saved values; proto 0 as 802.1Q, an unreported
  // trust off, an unreported spoofchk left alone.
  const cni::VfSettings restore = sriov::restore_settings(r);
  CHECK(restore.vlan == cni::VfVlan{7, 1, cni::kVlanProto8021Q});
  CHECK(restore.mac == cni::MacAddress::parse("02:00:00:00:00:03"));
  CHECK(restore.rate == cni::VfRate{1, 2});
  CHECK(restore.spoofchk == std::nullopt);
  CHECK(restore.trust == false);
  CHECK(restore.link_state == cni::VfLinkState::kEnable);
  // Only what was applied.
  r.applied = {.trust = false};
  CHECK(sriov::restore_settings(r) == cni::VfSettings{.trust = false});

  CHECK_THROWS_WITH(sriov::record_from_json({{"format", "other"}}),
                    Catch::Contains("not a record of this plugin"));
  CHECK_THROWS(sriov::record_from_json({{"format", "strait-sriov/1"}, {"deviceID", 3}}));
}
