#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

// The ipip plugin on this machine's kernel, which has no ipip (CONFIG_NET_IPIP unset: no
// tunl0, and `ip link add type ipip` is "Unknown device type"): ADD and STATUS fail with the
// clear error and leave nothing. What needs a kernel with ipip (pods talking across nodes,
// crossSubnet, the MTU, sync) runs in the VM phase: test/vm/ipip_plugin_test.cpp.
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::OverlayLab;
using strait::test::OverlayLabOptions;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::sh;
using strait::test::sh_ok;
using strait::test::TempNetns;

OverlayLabOptions ipip_node(const std::string& extra = "") {
  OverlayLabOptions o;
  o.nodes = 1;
  o.plugin = "ipip";
  o.dual_stack = false;
  o.vxlan_extra = extra;
  return o;
}

// The kernel this runs on must be the one without ipip, or these tests test nothing.
void require_no_ipip(const OverlayLab& lab) {
  std::string out;
  const int rc = sh("ip -n " + lab.node(0).name() + " link add ipipt type ipip 2>&1", &out);
  REQUIRE(rc != 0);
  REQUIRE(out.find("Unknown device type") != std::string::npos);
}

// What the node netns holds besides lo and eth0 (links), its routes, and the store's files.
std::string node_state(const OverlayLab& lab) {
  const std::string n = lab.node(0).name();
  // ip's stderr is left out: "Peer netns reference is invalid." comes and goes with whether
  // eth0's peer netns has an id here yet (hostile_input_test.cpp's snapshot does the same).
  return sh_ok("ip -n " + n +
               " -o link show 2>/dev/null | grep -v ': lo:' | grep -v ': eth0@' || true") +
         sh_ok("ip -n " + n + " route show table all | grep -v 'table local' || true") +
         sh_ok("ip -n " + n + " -6 route show table all | grep -v 'table local' || true");
}

// bin/ipip run directly (not through cnitool) in node 0's netns with its plugin config.
PluginRun exec_ipip(const OverlayLab& lab, cni::EnvMap env) {
  json conf = lab.conf(0).at("plugins").at(0);
  conf["cniVersion"] = "1.1.0";
  conf["name"] = lab.network();
  env["CNI_PATH"] = OverlayLab::bin_dir();
  return strait::test::run_plugin(strait::test::bin("ipip"), env, conf.dump(), lab.node(0).name());
}

size_t store_files(const OverlayLab& lab) {
  if (!fs::exists(lab.store_path())) return 0;
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(lab.store_path())) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE(
    "ipip: without kernel ipip support ADD fails with code 50 naming CONFIG_NET_IPIP "
    "and leaves nothing",
    "[ipip][plugin]") {
  OverlayLab lab(ipip_node());
  require_no_ipip(lab);
  const std::string before = node_state(lab);
  TempNetns pod{"ipf"};
  PluginRun r = lab.cnitool(0, "add", pod.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("CONFIG_NET_IPIP") != std::string::npos);
  CHECK(r.err.find("lacks ipip support") != std::string::npos);
  // The plugin's own error JSON, through exec: code 50.
  PluginRun direct = exec_ipip(lab, plugin_env("ADD", "ipipc1", pod.path(), "eth0"));
  INFO(direct.out << direct.err);
  CHECK(direct.exit_code == 1);
  CHECK(direct.json().at("code") == 50);
  CHECK(direct.json().at("msg").get<std::string>().find("CONFIG_NET_IPIP") != std::string::npos);

  // Nothing: no tunl0, no probe link, no veth, no route, no lease, no node record, no lock.
  CHECK(node_state(lab) == before);
  CHECK(store_files(lab) == 0);
  CHECK_FALSE(fs::exists(lab.lock_dir(0)));
  CHECK(sh_ok("ip -n " + pod.name() + " -o link show") ==
        sh_ok("ip -n " + pod.name() + " -o link show lo"));
  // DEL of what never was succeeds.
  PluginRun del = lab.cnitool(0, "del", pod.path());
  INFO(del.out << del.err);
  CHECK(del.exit_code == 0);
}

TEST_CASE("ipip: without kernel ipip support STATUS reports code 50 naming CONFIG_NET_IPIP",
          "[ipip][plugin]") {
  OverlayLab lab(ipip_node(",\"ipipMode\": \"crossSubnet\""));
  require_no_ipip(lab);
  const std::string before = node_state(lab);
  PluginRun status = exec_ipip(lab, plugin_env("STATUS", "", "", ""));
  INFO(status.out << status.err);
  CHECK(status.exit_code == 1);
  CHECK(status.json().at("code") == 50);
  CHECK(status.json().at("msg").get<std::string>().find("CONFIG_NET_IPIP") != std::string::npos);
  CHECK(node_state(lab) == before);
}

TEST_CASE("ipip: bad keys are code 7 naming the key, before the kernel is asked",
          "[ipip][plugin]") {
  struct Row {
    std::string extra;
    std::string key;
  };
  for (const Row& row : {Row{",\"ipipMode\": \"vxlan\"", "ipipMode"}, Row{",\"mtu\": 1481", "mtu"},
                         Row{",\"underlayInterface\": \"nosuch0\"", "underlayInterface"},
                         Row{",\"localAddress\": \"192.0.2.99\"", "localAddress"}}) {
    OverlayLab lab(ipip_node(row.extra));
    const std::string before = node_state(lab);
    TempNetns pod{"ipk"};
    PluginRun r = lab.cnitool(0, "add", pod.path());
    INFO(row.extra << ": " << r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(row.key) != std::string::npos);
    CHECK(r.err.find("CONFIG_NET_IPIP") == std::string::npos);
    CHECK(node_state(lab) == before);
    CHECK(store_files(lab) == 0);
  }
}
