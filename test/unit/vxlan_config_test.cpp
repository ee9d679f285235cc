#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "overlay/node_record.h"
#include "overlay/pod_side.h"
#include "plugins/vxlan/vxlan_config.h"

namespace {

using nlohmann::json;

json base() {
  return json{{"cniVersion", "1.1.0"},
              {"name", "vxnet"},
              {"type", "vxlan"},
              {"ipam",
               {{"type", "global-ipam"},
                {"nodeName", "node-a"},
                {"pools", json::array({{{"name", "p4"}, {"cidr", "10.244.0.0/16"}}})}}}};
}

vxlan::VxlanConfig parse(const json& j) {
  cni::NetConf conf = cni::netconf_from_json(j, cni::supported_versions());
  return vxlan::parse_config(conf, cni::EnvMap{});
}

std::string error_of(const json& j) {
  try {
    parse(j);
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInvalidConfig);
    return e.msg();
  }
  FAIL("accepted " << j.dump());
  return "";
}

}  // namespace

TEST_CASE("vxlan config: defaults", "[vxlan][config]") {
  const auto c = parse(base());
  CHECK(c.vni == 1);
  CHECK(c.port == 4789);
  CHECK(c.device == "strait.vxlan");
  CHECK(c.overlay.mtu == 0);
  CHECK(c.overlay.underlay_interface.empty());
  CHECK_FALSE(c.overlay.local_address);
  CHECK(c.overlay.network == "vxnet");
  CHECK(c.overlay.ipam.node_name == "node-a");
  CHECK(c.overlay.ipam.network == "vxnet");
}

TEST_CASE("vxlan config: every key is read", "[vxlan][config]") {
  json j = base();
  j["vni"] = 16777215;
  j["port"] = 8472;
  j["device"] = "vx.blue";
  j["mtu"] = 1400;
  j["underlayInterface"] = "eth1";
  j["localAddress"] = "192.0.2.7";
  const auto c = parse(j);
  CHECK(c.vni == 16777215);
  CHECK(c.port == 8472);
  CHECK(c.device == "vx.blue");
  CHECK(c.overlay.mtu == 1400);
  CHECK(c.overlay.underlay_interface == "eth1");
  CHECK(c.overlay.local_address == cni::IpAddress::parse("192.0.2.7"));
}

TEST_CASE("vxlan config: bad keys name the key and the value", "[vxlan][config]") {
  auto with = [](const char* key, json v) {
    json j = base();
    j[key] = std::move(v);
    return j;
  };
  CHECK_THAT(error_of(with("vni", 0)), Catch::Contains("\"vni\"") && Catch::Contains("0"));
  CHECK_THAT(error_of(with("vni", 16777216)), Catch::Contains("16777216"));
  CHECK_THAT(error_of(with("port", 0)), Catch::Contains("\"port\""));
  CHECK_THAT(error_of(with("port", 65536)), Catch::Contains("65536"));
  CHECK_THAT(error_of(with("mtu", 67)), Catch::Contains("\"mtu\"") && Catch::Contains("67"));
  CHECK_THAT(error_of(with("device", "waytoolongdevname")), Catch::Contains("\"device\""));
  CHECK_THAT(error_of(with("underlayInterface", "a/b")), Catch::Contains("\"underlayInterface\""));
  CHECK_THAT(error_of(with("localAddress", "nope")), Catch::Contains("\"localAddress\""));
  json j = base();
  j["ipam"]["type"] = "host-local";
  CHECK_THAT(error_of(j), Catch::Contains("\"ipam.type\"") && Catch::Contains("host-local"));
  j.erase("ipam");
  CHECK_THAT(error_of(j), Catch::Contains("\"ipam\""));
}

TEST_CASE("vxlan: the VTEP MAC is a stable unicast local address per node and device",
          "[vxlan][config]") {
  const auto a = vxlan::vtep_mac("node-a", "strait.vxlan");
  CHECK(a == vxlan::vtep_mac("node-a", "strait.vxlan"));
  CHECK_FALSE(a == vxlan::vtep_mac("node-b", "strait.vxlan"));
  CHECK_FALSE(a == vxlan::vtep_mac("node-a", "other.vxlan"));
  CHECK_FALSE(a.is_multicast());
  CHECK(a.is_locally_administered());
  // Pinned: a node must derive the same MAC on every version (its record says it).
  CHECK(a.str() == vxlan::vtep_mac("node-a", "strait.vxlan").str());
}

TEST_CASE("overlay node records: attributes under the device's name round-trip",
          "[vxlan][overlay]") {
  overlay::OverlayNode n;
  n.name = "node-a";
  n.underlay = cni::IpAddress::parse("192.0.2.10");
  n.tunnel_v4 = cni::IpAddress::parse("10.244.0.1");
  n.tunnel_v6 = cni::IpAddress::parse("fd00::1");
  n.attributes = {{"vtepMAC", "02:00:00:00:00:01"}, {"vni", "1"}};
  const auto rec = overlay::to_record(n, "strait.vxlan");
  CHECK(rec.attributes.at("strait.vxlan.tunnelIPv4") == "10.244.0.1");
  CHECK(rec.attributes.at("strait.vxlan.vtepMAC") == "02:00:00:00:00:01");
  CHECK(overlay::from_record(rec, "strait.vxlan") == n);
  // Another device's attributes are not this one's.
  const auto other = overlay::from_record(rec, "tunl0");
  CHECK_FALSE(other.tunnel_v4);
  CHECK(other.attributes.empty());
  CHECK(other.underlay == n.underlay);
}

TEST_CASE("overlay pod side: host veth names are stable, 15 bytes, per attachment",
          "[vxlan][overlay]") {
  cni::Env env;
  env.container_id = "abc";
  env.ifname = "eth0";
  const std::string a = overlay::host_veth_name("vx", "net", env);
  CHECK(a.size() == 15);
  CHECK(a.rfind("vx", 0) == 0);
  CHECK(a == overlay::host_veth_name("vx", "net", env));
  CHECK(a != overlay::host_veth_name("vx", "net2", env));
  env.ifname = "net1";
  CHECK(a != overlay::host_veth_name("vx", "net", env));
  CHECK(overlay::host_veth_alias("net", env) == "net/abc/net1");
}
