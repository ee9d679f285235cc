#include <catch2/catch.hpp>

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

// The vxlan plugin's pieces on one node of an overlay lab (test/support/overlay_lab.h): the
// node side the first ADD makes, drift repair, DEL twice and with a gone netns, a failed
// first ADD that leaves nothing, and concurrent first ADDs.
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::LabPod;
using strait::test::OverlayLab;
using strait::test::OverlayLabOptions;
using strait::test::PluginRun;
using strait::test::sh_ok;
using strait::test::TempNetns;

OverlayLabOptions one_node() {
  OverlayLabOptions o;
  o.nodes = 1;
  o.max_blocks_per_node = 4;
  return o;
}

std::string device(const OverlayLab& lab) {
  return sh_ok("ip -n " + lab.node(0).name() + " -d link show strait.vxlan");
}

bool has_device(const OverlayLab& lab) {
  return sh_ok("ip -n " + lab.node(0).name() + " -o link show").find("strait.vxlan") !=
         std::string::npos;
}

std::string routes(const OverlayLab& lab) {
  return sh_ok("ip -n " + lab.node(0).name() + " route show proto 157; ip -n " +
               lab.node(0).name() + " -6 route show proto 157");
}

// Every allocation in the file store's blocks, "<address>=<handle>".
std::vector<std::string> allocations(const OverlayLab& lab) {
  std::vector<std::string> out;
  const fs::path blocks = fs::path(lab.store_path()) / "blocks";
  if (!fs::exists(blocks)) return out;
  for (const auto& e : fs::recursive_directory_iterator(blocks)) {
    if (!e.is_regular_file()) continue;
    const std::string text = strait::test::read_file(e.path().string());
    const json block = json::parse(text.substr(text.find('\n') + 1));
    for (const auto& a : block.at("allocations")) out.push_back(a.dump());
  }
  return out;
}

std::string host_veths(const OverlayLab& lab) {
  return sh_ok("ip -n " + lab.node(0).name() +
               " -o link show type veth | grep -o ' vx[0-9a-f]*@' "
               "|| true");
}

}  // namespace

TEST_CASE("vxlan: the first ADD makes the node side with the config's parameters",
          "[vxlan][plugin]") {
  OverlayLabOptions o = one_node();
  o.vxlan_extra = ",\"vni\": 77, \"port\": 4790";
  OverlayLab lab(o);
  LabPod pod = lab.add_pod(0);
  const std::string d = device(lab);
  INFO(d);
  CHECK(d.find("vxlan id 77") != std::string::npos);
  CHECK(d.find("dstport 4790") != std::string::npos);
  CHECK(d.find("nolearning") != std::string::npos);
  CHECK(d.find("mtu 1450") != std::string::npos);
  CHECK(d.find("local 192.0.2.10") != std::string::npos);
  // The pod end follows the vxlan MTU; the pod has /32 and /128 and the link-local gateways.
  const std::string pod_links = sh_ok("ip -n " + pod.ns->name() + " -o addr show eth0");
  CHECK(pod_links.find(pod.v4 + "/32") != std::string::npos);
  CHECK(pod_links.find(pod.v6 + "/128") != std::string::npos);
  CHECK(sh_ok("ip -n " + pod.ns->name() + " route show default").find("via 169.254.1.1") !=
        std::string::npos);
  CHECK(sh_ok("ip -n " + pod.ns->name() + " -6 route show default").find("via fe80::1") !=
        std::string::npos);
  // A tunnel address per family on the device, and a blackhole per held block.
  const std::string addrs = sh_ok("ip -n " + lab.node(0).name() + " -o addr show strait.vxlan");
  CHECK(addrs.find("inet 10.244.0.") != std::string::npos);
  CHECK(addrs.find("inet6 fd00:244::") != std::string::npos);
  const std::string r = routes(lab);
  CHECK(r.find("blackhole 10.244.0.") != std::string::npos);
  CHECK(r.find("blackhole fd00:244::") != std::string::npos);
  CHECK(lab.node(0).exec("cat /proc/sys/net/ipv4/ip_forward") == "1\n");
  // A second pod changes no node state: the same device, the same tunnel addresses.
  LabPod second = lab.add_pod(0);
  CHECK(sh_ok("ip -n " + lab.node(0).name() + " -o addr show strait.vxlan") == addrs);
  // The agent's first pass writes only what ADD leaves to it, the outgoing NAT tables (ip and
  // ip6, overlay/nat.h); its next writes nothing.
  CHECK(lab.sync(0).find(" 2 writes (0 node, 0 added, 0 replaced, 0 deleted, 0 peer, 2 nat)") !=
        std::string::npos);
  CHECK(lab.sync(0).find(" 0 writes") != std::string::npos);
  // CHECK passes on both.
  PluginRun check = lab.cnitool(0, "check", pod.ns->path());
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
}

TEST_CASE("vxlan: a device deleted or changed by hand is repaired by the next ADD and by sync",
          "[vxlan][plugin]") {
  OverlayLab lab(one_node());
  LabPod a = lab.add_pod(0);

  SECTION("deleted: CHECK fails, the next ADD makes it again") {
    lab.node(0).exec("ip link del strait.vxlan");
    PluginRun check = lab.cnitool(0, "check", a.ns->path());
    CHECK(check.exit_code != 0);
    CHECK((check.out + check.err).find("strait.vxlan") != std::string::npos);
    LabPod b = lab.add_pod(0);
    REQUIRE(has_device(lab));
    CHECK(device(lab).find("vxlan id 1 ") != std::string::npos);
    CHECK(sh_ok("ip -n " + lab.node(0).name() + " -o addr show strait.vxlan")
              .find("inet 10.244.0.") != std::string::npos);
  }
  SECTION("deleted: sync makes it again") {
    lab.node(0).exec("ip link del strait.vxlan");
    const std::string out = lab.sync(0);
    INFO(out);
    REQUIRE(has_device(lab));
    CHECK(lab.sync(0).find(" 0 writes") != std::string::npos);
  }
  SECTION("MTU changed and set down: the next ADD restores both") {
    lab.node(0).exec("ip link set strait.vxlan mtu 1300 && ip link set strait.vxlan down");
    PluginRun check = lab.cnitool(0, "check", a.ns->path());
    CHECK(check.exit_code != 0);
    LabPod b = lab.add_pod(0);
    const std::string d = device(lab);
    INFO(d);
    CHECK(d.find("mtu 1450") != std::string::npos);
    CHECK(d.find(",UP") != std::string::npos);
    PluginRun again = lab.cnitool(0, "check", a.ns->path());
    INFO(again.out << again.err);
    CHECK(again.exit_code == 0);
  }
  SECTION("vni changed (made again by hand with another vni): the next ADD remakes it") {
    lab.node(0).exec(
        "ip link del strait.vxlan && ip link add strait.vxlan type vxlan id 9 "
        "dstport 4789 dev eth0 nolearning");
    LabPod b = lab.add_pod(0);
    CHECK(device(lab).find("vxlan id 1 ") != std::string::npos);
  }
}

TEST_CASE("vxlan: DEL twice and DEL with a gone netns succeed and leave the node side",
          "[vxlan][plugin]") {
  OverlayLab lab(one_node());
  LabPod keep = lab.add_pod(0);
  const std::vector<std::string> before = allocations(lab);  // tunnel addresses + keep's

  SECTION("twice") {
    LabPod p = lab.add_pod(0);
    PluginRun d1 = lab.cnitool(0, "del", p.ns->path());
    INFO(d1.out << d1.err);
    CHECK(d1.exit_code == 0);
    PluginRun d2 = lab.cnitool(0, "del", p.ns->path());
    INFO(d2.out << d2.err);
    CHECK(d2.exit_code == 0);
    CHECK(sh_ok("ip -n " + p.ns->name() + " -o link show").find("eth0") == std::string::npos);
    CHECK(routes(lab).find(p.v4) == std::string::npos);
  }
  SECTION("the pod's netns is gone") {
    LabPod p = lab.add_pod(0);
    const std::string path = p.ns->path();
    p.ns.reset();  // deletes the netns, and the pod end with it
    PluginRun d = lab.cnitool(0, "del", path);
    INFO(d.out << d.err);
    CHECK(d.exit_code == 0);
  }
  CHECK(allocations(lab) == before);
  CHECK(has_device(lab));
  const std::string veths = host_veths(lab);
  INFO(veths);
  CHECK(std::count(veths.begin(), veths.end(), '@') == 1);  // keep's
}

TEST_CASE("vxlan: a first ADD that fails after making the node side leaves nothing",
          "[vxlan][plugin]") {
  OverlayLab lab(one_node());
  TempNetns pod{"vxf"};
  // global-ipam refuses an IP= outside its pools: the ADD fails after the device, the tunnel
  // addresses and the node record were made, and undoes them.
  PluginRun r = lab.cnitool(0, "add", pod.path(), "CNI_ARGS=IP=10.99.0.5 ");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code != 0);
  CHECK_FALSE(has_device(lab));
  CHECK(allocations(lab).empty());
  CHECK(routes(lab).empty());
  CHECK(host_veths(lab).empty());
  CHECK(sh_ok("ip -n " + pod.name() + " -o link show") ==
        sh_ok("ip -n " + pod.name() + " -o link show lo"));
  // The node is as fresh as before: the next ADD works.
  LabPod p = lab.add_pod(0);
  CHECK(has_device(lab));
}

TEST_CASE("vxlan: concurrent first ADDs on a fresh node all succeed", "[vxlan][plugin]") {
  OverlayLab lab(one_node());
  std::vector<std::unique_ptr<TempNetns>> pods;
  for (int i = 0; i < 4; ++i) pods.push_back(std::make_unique<TempNetns>("vxc"));
  std::vector<std::future<PluginRun>> runs;
  for (const auto& p : pods) {
    runs.push_back(std::async(std::launch::async,
                              [&lab, path = p->path()] { return lab.cnitool(0, "add", path); }));
  }
  std::vector<std::string> ips;
  for (auto& f : runs) {
    PluginRun r = f.get();
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    if (r.exit_code == 0) ips.push_back(json::parse(r.out).at("ips").at(0).at("address"));
  }
  std::sort(ips.begin(), ips.end());
  CHECK(std::adjacent_find(ips.begin(), ips.end()) == ips.end());
  // One device, one tunnel address per family.
  const std::string addrs = sh_ok("ip -n " + lab.node(0).name() + " -o addr show strait.vxlan");
  INFO(addrs);
  CHECK(std::count(addrs.begin(), addrs.end(), '\n') == 3);  // inet, inet6 tunnel, fe80
  for (const auto& p : pods) lab.cnitool(0, "del", p->path());
}

TEST_CASE("vxlan: the pod end is made as CNI_IFNAME, and a pair a killed ADD left is replaced",
          "[vxlan][plugin]") {
  OverlayLab lab(one_node());
  LabPod keep = lab.add_pod(0);  // the node side
  TempNetns pod{"vxl"};
  json conf = lab.conf(0).at("plugins").at(0);
  conf["name"] = lab.network();
  conf["cniVersion"] = "1.0.0";
  conf["logLevel"] = "info";  // the leftover's deletion is logged at info
  const cni::EnvMap add = strait::test::plugin_env("ADD", "leftover-ctr", pod.path(), "eth0");
  PluginRun first =
      strait::test::run_plugin(strait::test::bin("vxlan"), add, conf.dump(), lab.node(0).name());
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  const std::string host_name = first.json().at("interfaces").at(0).at("name");
  // What an ADD killed before its rename leaves (on a kernel that needs the temporary name):
  // the host veth under its derived name, the pod end under another name.
  sh_ok("ip -n " + pod.name() + " link set eth0 down && ip -n " + pod.name() +
        " link set eth0 name vxpleftover");
  const std::string old_index =
      sh_ok("ip -n " + lab.node(0).name() + " -o link show " + host_name + " | cut -d: -f1");

  PluginRun again =
      strait::test::run_plugin(strait::test::bin("vxlan"), add, conf.dump(), lab.node(0).name());
  INFO(again.out << again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(again.err.find("left by an ADD that did not finish") != std::string::npos);
  const std::string links = sh_ok("ip -n " + pod.name() + " -o link show");
  INFO(links);
  CHECK(links.find("vxpleftover") == std::string::npos);
  CHECK(links.find(" eth0@") != std::string::npos);
  CHECK(sh_ok("ip -n " + lab.node(0).name() + " -o link show " + host_name + " | cut -d: -f1") !=
        old_index);
  CHECK(again.json().at("ips").at(0).at("address") == first.json().at("ips").at(0).at("address"));

  // A CNI_IFNAME taken in the pod netns is code 4, and nothing is made.
  const std::vector<std::string> held = allocations(lab);
  const cni::EnvMap add_lo = strait::test::plugin_env("ADD", "taken-ctr", pod.path(), "lo");
  PluginRun taken =
      strait::test::run_plugin(strait::test::bin("vxlan"), add_lo, conf.dump(), lab.node(0).name());
  INFO(taken.out << taken.err);
  CHECK(taken.exit_code == 1);
  CHECK(taken.json().at("code") == 4);
  CHECK(allocations(lab) == held);

  cni::EnvMap del = add;
  del["CNI_COMMAND"] = "DEL";
  CHECK(strait::test::run_plugin(strait::test::bin("vxlan"), del, conf.dump(), lab.node(0).name())
            .exit_code == 0);
  CHECK(sh_ok("ip -n " + pod.name() + " -o link show").find("eth0") == std::string::npos);
  CHECK(host_veths(lab).find(host_name) == std::string::npos);
}
