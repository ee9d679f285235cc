#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"
#include "test/support/sriov_world.h"

// Every executable driven exactly as multus drives a delegate (multus-cni pkg/multus/multus.go
// and pkg/types/conf.go): secondary attachments named net1 and net2, CNI_ARGS
// "IgnoreUnknown=true;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;K8S_POD_INFRA_CONTAINER_ID=..;
// K8S_POD_UID=.." plus the deprecated MAC=/IP= of a selection element that carries mac/ips,
// cniVersion 0.3.1 configs (what most NetworkAttachmentDefinitions carry), runtimeConfig with
// mac, ips, bandwidth and deviceID for the capabilities the NAD declares (a plugin ignores the
// keys it has no use for), deviceID/pciBusID injected at the config's top level, args.cni
// from the "cni-args" annotation. DEL comes in reverse order from multus' cache, i.e. with the
// bytes of the ADD's config, after the master named there was renamed, with CNI_NETNS empty
// (pod gone) or naming a deleted namespace, and repeated. At the end nothing is left: no
// lease, no link.
//
// A new executable joins with one targets() row (one that needs the VM's kernel: a test case
// tagged [.vm] calling delegation(), run by its VM suite, as ipip's).
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::read_file;
using strait::test::run_plugin;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

struct Target {
  std::string name;        // for messages
  std::string executable;  // what multus execs
  std::string ipam;        // host-local or global-ipam (file store)
  bool makes_link;         // macvlan: a link in the pod netns; an IPAM alone: none
  // vxlan: a routed pod, its address as /32 via the link-local gateway; the MAC is the
  // veth's own (an overlay has no use for a chosen one).
  bool routed = false;
};

std::vector<Target> targets() {
  return {{"macvlan + host-local", "macvlan", "host-local", true},
          {"macvlan + global-ipam", "macvlan", "global-ipam", true},
          {"host-local", "host-local", "host-local", false},
          {"global-ipam", "global-ipam", "global-ipam", false},
          {"vxlan + global-ipam", "vxlan", "global-ipam", true, true}};
}

// One node: a "host" netns whose veth mst0 is the master, and a data directory.
struct Node {
  TempNetns host{"muh"};
  TempDir data{"strait-multus"};

  Node() {
    sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0");
    sh_ok("ip -n " + host.name() + " link set mst0 up");
    sh_ok("ip -n " + host.name() + " addr add 192.0.2.1/24 dev mst0");  // vxlan's underlay
  }

  json ipam(const Target& t, const std::string& subnet_prefix) const {
    if (t.ipam == "global-ipam") {
      return {{"type", "global-ipam"},
              {"nodeName", "multus-node"},
              {"pools", json::array({{{"name", "pool-" + subnet_prefix},
                                      {"cidr", subnet_prefix + ".0/24"},
                                      {"gateway", subnet_prefix + ".1"}}})},
              {"store", {{"type", "file"}, {"path", data.path() + "/store"}}},
              {"nodeLockDir", data.path() + "/locks"}};
    }
    return {{"type", "host-local"},
            {"dataDir", data.path() + "/leases"},
            {"ranges", json::array({json::array({{{"subnet", subnet_prefix + ".0/24"},
                                                  {"gateway", subnet_prefix + ".1"}}})})}};
  }

  // A NetworkAttachmentDefinition's config as multus hands it to the delegate, with what the
  // selection element and the device plugin add.
  json nad(const Target& t, const std::string& network, const std::string& subnet_prefix,
           const std::string& mac, const std::string& ip) const {
    json c = {
        {"cniVersion", "0.3.1"},
        {"name", network},
        {"type", t.executable},
        {"ipam", ipam(t, subnet_prefix)},
        // The device plugin's VF, injected at the top level and in runtimeConfig.
        {"deviceID", "0000:00:00.0"},
        {"pciBusID", "0000:00:00.0"},
        {"args", {{"cni", {{"labels", json::array({{{"key", "app"}, {"value", "x"}}})}}}}},
        {"capabilities", {{"mac", true}, {"ips", true}, {"bandwidth", true}, {"deviceID", true}}},
        {"runtimeConfig",
         {{"mac", mac},
          {"ips", json::array({ip + "/24"})},
          {"bandwidth", {{"ingressRate", 1000000}, {"ingressBurst", 100000}}},
          {"deviceID", "0000:00:00.0"}}}};
    if (t.executable == "macvlan") {
      c["master"] = "mst0";
      c["mode"] = "bridge";
    }
    if (t.executable == "vxlan") {
      // Each network its own overlay: device and VNI.
      c["underlayInterface"] = "mst0";
      c["device"] = "stvx" + subnet_prefix.substr(subnet_prefix.rfind('.') + 1);
      c["vni"] = std::stoi(subnet_prefix.substr(subnet_prefix.rfind('.') + 1));
    }
    if (t.executable == "ipip") c["underlayInterface"] = "mst0";  // one tunl0 per node
    return c;
  }

  PluginRun call(const Target& t, const std::string& verb, const std::string& netns,
                 const std::string& cid, const std::string& ifname, const std::string& cni_args,
                 const std::string& stdin_bytes) const {
    return run_plugin(bin(t.executable), plugin_env(verb, cid, netns, ifname, cni_args),
                      stdin_bytes, host.name());
  }

  // Every address a lease or allocation holds, for either IPAM ("" when none).
  std::set<std::string> held() const {
    std::set<std::string> out;
    for (const char* sub : {"/leases", "/store/blocks"}) {
      fs::path root = data.path() + sub;
      if (!fs::exists(root)) continue;
      for (const auto& e : fs::recursive_directory_iterator(root)) {
        if (!e.is_regular_file()) continue;
        std::string rel = fs::relative(e.path(), root).string();
        if (std::string(sub) == "/leases") {
          std::string n = e.path().filename().string();
          if (rel.find("/.strait") != std::string::npos || n == "lock" ||
              n.rfind("last_reserved_ip", 0) == 0) {
            continue;
          }
          out.insert(n);
        } else {
          std::string text = read_file(e.path());
          json b = json::parse(text.substr(text.find('\n') + 1));
          for (const auto& a : b.at("allocations")) {
            const std::string h = a.at("handle").get<std::string>();
            // An overlay's tunnel address is node state, not an attachment's.
            if (h.find("-tunnel-addr/") == std::string::npos) out.insert(h);
          }
        }
      }
    }
    return out;
  }
};

std::string k8s_args(const std::string& cid, const std::string& extra) {
  std::string a =
      "IgnoreUnknown=true;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=trainer-0;"
      "K8S_POD_INFRA_CONTAINER_ID=" +
      cid + ";K8S_POD_UID=6f1c1f2e-9d1b-4f7e-8a51-0c4b1d1e2f3a";
  return extra.empty() ? a : a + ";" + extra;
}

// One targets() row: net1 and net2 added as multus does, a third attachment with the
// deprecated CNI_ARGS, then DEL from the cache in each of the sections (`every_del` false: only
// the one after the pod netns was deleted, DEL naming it, twice).
void delegation(const Target& t, bool every_del = true) {
  Node node;
  // The pod with nothing attached, and with net1 and net2.
  const std::set<std::string> bare = strait::test::new_netns_links();
  const std::set<std::string> both = strait::test::new_netns_links({"net1", "net2"});
  TempNetns pod{"mup"};
  const std::string cid = unique_name("multus", 40);
  struct Attachment {
    std::string ifname, network, prefix, mac, ip, cached, args;
  };
  std::vector<Attachment> atts = {{"net1", unique_name("munet1", 40), "198.51.100",
                                   "02:00:00:4d:00:01", "198.51.100.41", "", ""},
                                  {"net2", unique_name("munet2", 40), "203.0.113",
                                   "02:00:00:4d:00:02", "203.0.113.42", "", ""}};

  // ADD, as multus does it: one delegate after the other, and it caches each config.
  for (auto& a : atts) {
    a.cached = node.nad(t, a.network, a.prefix, a.mac, a.ip).dump();
    // The selection element's mac/ips also go to CNI_ARGS (the same values).
    a.args = k8s_args(cid, "MAC=" + a.mac + ";IP=" + a.ip);
    PluginRun r = node.call(t, "ADD", pod.path(), cid, a.ifname, a.args, a.cached);
    INFO(t.name << " ADD " << a.ifname << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    json res = r.json();
    CHECK(res.at("cniVersion") == "0.3.1");
    REQUIRE(res.at("ips").size() == 1);
    // 0.3.1 results carry "version" per address.
    CHECK(res["ips"][0].at("version") == "4");
    const std::string prefix_len = t.routed ? "/32" : "/24";
    CHECK(res["ips"][0].at("address") == a.ip + prefix_len);
    CHECK(res["ips"][0].at("gateway") == (t.routed ? "169.254.1.1" : a.prefix + ".1"));
    if (t.makes_link) {
      // The pod's interface: the one ips[].interface names (a routed pod's result lists
      // the host veth too).
      REQUIRE(res["ips"][0].contains("interface"));
      const json& iface = res.at("interfaces").at(res["ips"][0]["interface"].get<size_t>());
      CHECK(iface.at("name") == a.ifname);
      CHECK(iface.at("sandbox") == pod.path());
      std::string shown = pod.exec("ip -o addr show dev " + a.ifname);
      CHECK(shown.find(a.ip + prefix_len) != std::string::npos);
      if (!t.routed) {
        CHECK(iface.at("mac") == a.mac);
        CHECK(pod.exec("cat /sys/class/net/" + a.ifname + "/address").find(a.mac) !=
              std::string::npos);
      }
    }
  }
  CHECK(node.held().size() == 2);
  if (t.makes_link) CHECK(pod.links() == both);

  // The deprecated CNI_ARGS MAC=/IP= of a selection element (multus < 3.5 style) on a
  // third attachment, with runtimeConfig absent.
  {
    TempNetns pod3{"mup"};
    const std::string cid3 = unique_name("multus3", 40);
    json c = node.nad(t, atts[0].network, atts[0].prefix, "", "");
    c.erase("runtimeConfig");
    const std::string mac_arg = "MAC=02:00:00:4d:00:03;";
    PluginRun r = node.call(t, "ADD", pod3.path(), cid3, "net1",
                            k8s_args(cid3, mac_arg + "IP=198.51.100.43"), c.dump());
    INFO(t.name << " ADD with CNI_ARGS MAC/IP: " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.json()["ips"][0].at("address") ==
          std::string("198.51.100.43") + (t.routed ? "/32" : "/24"));
    if (t.makes_link && !t.routed) {
      CHECK(r.json()["interfaces"][0].at("mac") == "02:00:00:4d:00:03");
    }
    PluginRun d = node.call(t, "DEL", pod3.path(), cid3, "net1",
                            k8s_args(cid3, mac_arg + "IP=198.51.100.43"), c.dump());
    INFO("DEL: " << d.out << d.err);
    REQUIRE(d.exit_code == 0);
    CHECK(node.held().size() == 2);
  }

  // The master the cached config names is renamed after the ADD (for macvlan): DEL still
  // comes with the cached bytes, in reverse order.
  if (t.makes_link) {
    sh_ok("ip -n " + node.host.name() + " link set mst0 down");
    sh_ok("ip -n " + node.host.name() + " link set mst0 name mst0-renamed");
  }

  if (every_del) {
    SECTION("the pod netns is gone: DEL with CNI_NETNS empty") {
      pod.remove();
      for (auto a = atts.rbegin(); a != atts.rend(); ++a) {
        PluginRun d = node.call(t, "DEL", "", cid, a->ifname, a->args, a->cached);
        INFO(t.name << " DEL " << a->ifname << " without netns: " << d.out << d.err);
        CHECK(d.exit_code == 0);
      }
    }
  }
  SECTION("the pod netns is gone: DEL naming the deleted netns, twice") {
    const std::string dead = pod.path();
    pod.remove();
    for (int round = 0; round < 2; ++round) {
      for (auto a = atts.rbegin(); a != atts.rend(); ++a) {
        PluginRun d = node.call(t, "DEL", dead, cid, a->ifname, a->args, a->cached);
        INFO(t.name << " DEL " << a->ifname << " with a dead netns, round " << round << ": "
                    << d.out << d.err);
        CHECK(d.exit_code == 0);
      }
    }
  }
  if (every_del) {
    SECTION("the pod is alive: DEL removes the links too, then again") {
      for (int round = 0; round < 2; ++round) {
        for (auto a = atts.rbegin(); a != atts.rend(); ++a) {
          PluginRun d = node.call(t, "DEL", pod.path(), cid, a->ifname, a->args, a->cached);
          INFO(t.name << " DEL " << a->ifname << ", round " << round << ": " << d.out << d.err);
          CHECK(d.exit_code == 0);
        }
      }
      CHECK(pod.links() == bare);
    }
  }
  CHECK(node.held().empty());
}

}  // namespace

TEST_CASE("multus-style delegation: net1 and net2, 0.3.1, runtimeConfig, DEL from the cache",
          "[multus]") {
  for (const Target& t : targets()) {
    DYNAMIC_SECTION(t.name) { delegation(t); }
  }
}

// ipip's row, in its VM suite (a kernel with ipip; hidden from the main phase): both networks'
// pods on the node's one tunl0, routed as vxlan's, the underlay renamed before DEL. One DEL
// section, the pod netns deleted (each section repeats the ADDs, seconds each under TCG); the
// soak and the sweep delete live ipip pods.
TEST_CASE("multus-style delegation in the VM: ipip + global-ipam", "[.vm][ipip]") {
  delegation({"ipip + global-ipam", "ipip", "global-ipam", true, true}, /*every_del=*/false);
}

// ipip on this machine's kernel, which has no ipip: multus delegates net1 and net2, each ADD
// fails with code 50 naming CONFIG_NET_IPIP and leaves nothing, and multus' DEL from its cache
// (reverse order, CNI_NETNS empty, then naming the pod, twice) succeeds. Pods on a kernel with
// ipip: test/vm/ipip_plugin_test.cpp.
TEST_CASE("multus-style delegation: ipip without kernel ipip fails cleanly, DEL succeeds",
          "[multus]") {
  const Target t{"ipip + global-ipam", "ipip", "global-ipam", true, true};
  Node node;
  TempNetns pod{"mup"};
  const std::string cid = unique_name("multus", 40);
  std::vector<std::pair<std::string, std::string>> cached;  // ifname, config bytes
  const std::string args = k8s_args(cid, "IP=198.51.100.41");
  for (const auto& [ifname, prefix] : {std::pair{"net1", "198.51.100"}, {"net2", "203.0.113"}}) {
    const std::string conf = node.nad(t, unique_name("munet", 40), prefix, "02:00:00:4d:00:01",
                                      std::string(prefix) + ".41")
                                 .dump();
    PluginRun r = node.call(t, "ADD", pod.path(), cid, ifname, args, conf);
    INFO(ifname << " ADD: " << r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.json().value("code", 0) == 50);
    CHECK(r.json().value("msg", "").find("CONFIG_NET_IPIP") != std::string::npos);
    cached.emplace_back(ifname, conf);
  }
  CHECK(node.held().empty());
  CHECK(pod.links() == std::set<std::string>{"lo"});
  CHECK_FALSE(fs::exists(node.data.path() + "/store"));
  for (const std::string& netns : {std::string(), pod.path(), pod.path()}) {
    for (auto a = cached.rbegin(); a != cached.rend(); ++a) {
      PluginRun d = node.call(t, "DEL", netns, cid, a->first, args, a->second);
      INFO(a->first << " DEL (netns \"" << netns << "\"): " << d.out << d.err);
      CHECK(d.exit_code == 0);
    }
  }
  CHECK(node.held().empty());
}

// sriov (the fake-PF fixture, test/support/sriov_world.h) as multus drives it: the device
// plugin's VF only in runtimeConfig.deviceID and the top-level pciBusID (no deviceID key),
// net1 and net2 on two VFs of one pod, 0.3.1 configs, runtimeConfig.mac over CNI_ARGS MAC=,
// DEL from the cache in reverse order with CNI_NETNS empty, twice; and two pods racing for
// one VF. (The #219 sequence and DEL after the state was removed: test/integration/
// sriov_test.cpp.)
TEST_CASE("multus-style delegation: sriov, net1 and net2 on two VFs, DEL without netns, a race",
          "[multus]") {
  using strait::test::SriovNode;
  SriovNode node;
  const SriovNode::VfState before0 = node.vf_state(0);
  const SriovNode::VfState before1 = node.vf_state(1);
  const auto nad = [&](int vf, const std::string& mac) {
    json c =
        node.conf(vf, {{"cniVersion", "0.3.1"},
                       {"vlan", 200 + vf},
                       {"spoofchk", "on"},
                       {"capabilities", {{"mac", true}, {"deviceID", true}}},
                       {"runtimeConfig", {{"mac", mac}, {"deviceID", SriovNode::vf_address(vf)}}}});
    c.erase("deviceID");
    c["pciBusID"] = SriovNode::vf_address(vf);
    if (vf == 1) c["ipam"].erase("routes");  // one route to the network, through net1
    return c.dump();
  };

  SECTION("net1 and net2, DEL without netns from the cache") {
    TempNetns pod{"mup"};
    const std::string cid = unique_name("musriov", 40);
    const std::vector<std::string> ifnames = {"net1", "net2"};
    std::vector<std::string> cached;
    for (int vf = 0; vf < 2; ++vf) {
      const std::string mac = "02:00:00:5d:00:0" + std::to_string(vf + 1);
      cached.push_back(nad(vf, mac));
      const std::string args = k8s_args(cid, "MAC=02:00:00:5d:ff:ff");
      PluginRun r = node.run("ADD", pod.path(), cid, ifnames[vf], json::parse(cached[vf]), args);
      INFO("ADD " << ifnames[vf] << ": " << r.out << r.err);
      REQUIRE(r.exit_code == 0);
      const json res = r.json();
      CHECK(res.at("cniVersion") == "0.3.1");
      CHECK(res.at("interfaces").at(0).at("name") == ifnames[vf]);
      CHECK(res.at("interfaces").at(0).at("mac") == mac);         // runtimeConfig.mac wins
      CHECK_FALSE(res.at("interfaces").at(0).contains("pciID"));  // 1.1.0 only
      CHECK(res.at("ips").at(0).at("version") == "4");
      CHECK(node.pf().vf(SriovNode::kPf, vf).vlan == 200 + vf);
    }
    CHECK(pod.links() == std::set<std::string>{"lo", "net1", "net2"});
    for (int round = 0; round < 2; ++round) {
      for (int vf = 1; vf >= 0; --vf) {
        PluginRun d = node.run("DEL", "", cid, ifnames[vf], json::parse(cached[vf]),
                               k8s_args(cid, "MAC=02:00:00:5d:ff:ff"));
        INFO("DEL " << ifnames[vf] << " round " << round << ": " << d.out << d.err);
        CHECK(d.exit_code == 0);
      }
    }
    CHECK(pod.links() == std::set<std::string>{"lo"});
  }
  SECTION("two pods race for one VF: one gets it, the other is refused with code 11") {
    TempNetns pa{"mua"};
    TempNetns pb{"mub"};
    const std::string ca = unique_name("murace", 40);
    const std::string cb = unique_name("murace", 40);
    const json conf = json::parse(nad(0, "02:00:00:5d:00:09"));
    PluginRun ra, rb;
    std::thread ta([&] { ra = node.run("ADD", pa.path(), ca, "net1", conf, k8s_args(ca, "")); });
    std::thread tb([&] { rb = node.run("ADD", pb.path(), cb, "net1", conf, k8s_args(cb, "")); });
    ta.join();
    tb.join();
    INFO("a: " << ra.out << ra.err << "\nb: " << rb.out << rb.err);
    REQUIRE(ra.exit_code + rb.exit_code == 1);  // exactly one failed
    const PluginRun& lost = ra.exit_code ? ra : rb;
    CHECK(lost.json().value("code", 0) == 11);
    const std::set<std::string> a_links = pa.links();
    const std::set<std::string> b_links = pb.links();
    CHECK((a_links.size() + b_links.size()) == 3);  // lo, lo, net1
    // The loser's DEL (the runtime cleans up a failed ADD) must not touch the winner's VF.
    const SriovNode::VfState held = node.vf_state(0);
    const std::string lost_cid = ra.exit_code ? ca : cb;
    const TempNetns& lost_pod = ra.exit_code ? pa : pb;
    REQUIRE(node.run("DEL", lost_pod.path(), lost_cid, "net1", conf).exit_code == 0);
    CHECK(node.vf_state(0) == held);
    for (const auto& [cid, p] : {std::pair{ca, &pa}, std::pair{cb, &pb}}) {
      REQUIRE(node.run("DEL", p->path(), cid, "net1", conf).exit_code == 0);
    }
  }
  CHECK(node.vf_state(0) == before0);
  CHECK(node.vf_state(1) == before1);
  CHECK(node.state_files().empty());
  CHECK(node.leases().empty());
}

// A NetworkAttachmentDefinition holding a conflist, our macvlan then our bandwidth: multus runs
// it through libcni, so bandwidth gets the macvlan's result as prevResult on ADD, its limits
// as runtimeConfig.bandwidth (the NAD declares the capability; the pod's annotations fill it),
// and DEL comes in reverse order from multus' cache (0.3.1: no prevResult), with the netns
// gone, dead or alive, and repeated. The macvlan pod has no host end: bandwidth shapes it inside
// the pod, and nothing of it may be left.
TEST_CASE("multus-style delegation of a conflist: macvlan + bandwidth on net1 and net2",
          "[multus]") {
  const Target macvlan = targets()[0];  // macvlan + host-local
  Node node;
  TempNetns pod{"mup"};
  const std::string cid = unique_name("multusbw", 40);
  struct Attachment {
    std::string ifname, network, prefix, mac, ip, args;
    json macvlan_conf, bandwidth_conf;
  };
  std::vector<Attachment> atts = {{"net1",
                                   unique_name("mubw1", 40),
                                   "198.51.100",
                                   "02:00:00:4d:01:01",
                                   "198.51.100.51",
                                   "",
                                   {},
                                   {}},
                                  {"net2",
                                   unique_name("mubw2", 40),
                                   "203.0.113",
                                   "02:00:00:4d:01:02",
                                   "203.0.113.52",
                                   "",
                                   {},
                                   {}}};
  const json limits = {{"ingressRate", 8000000},
                       {"ingressBurst", 4294967295u},
                       {"egressRate", 4000000},
                       {"egressBurst", 4294967295u}};
  for (auto& a : atts) {
    a.macvlan_conf = node.nad(macvlan, a.network, a.prefix, a.mac, a.ip);
    a.bandwidth_conf = {{"cniVersion", "0.3.1"},
                        {"name", a.network},
                        {"type", "bandwidth"},
                        {"deviceID", "0000:00:00.0"},
                        {"capabilities", {{"bandwidth", true}}},
                        {"runtimeConfig", {{"bandwidth", limits}}}};
    a.args = k8s_args(cid, "MAC=" + a.mac + ";IP=" + a.ip);
    PluginRun m =
        node.call(macvlan, "ADD", pod.path(), cid, a.ifname, a.args, a.macvlan_conf.dump());
    INFO("macvlan ADD " << a.ifname << ": " << m.out << m.err);
    REQUIRE(m.exit_code == 0);
    json with_prev = a.bandwidth_conf;
    with_prev["prevResult"] = m.json();
    PluginRun b = run_plugin(bin("bandwidth"), plugin_env("ADD", cid, pod.path(), a.ifname, a.args),
                             with_prev.dump(), node.host.name());
    INFO("bandwidth ADD " << a.ifname << ": " << b.out << b.err);
    REQUIRE(b.exit_code == 0);
    json res = b.json();
    CHECK(res.at("cniVersion") == "0.3.1");
    CHECK(res.at("ips").at(0).at("address") == a.ip + "/24");
    const json& ifb = res.at("interfaces").back();
    CHECK(ifb.at("sandbox") == pod.path());
    CHECK(pod.exec("tc qdisc show dev " + a.ifname).find("tbf 1: root") != std::string::npos);
    CHECK(pod.exec("tc qdisc show dev " + ifb.at("name").get<std::string>()).find("tbf 1:") !=
          std::string::npos);
  }
  CHECK(node.held().size() == 2);
  CHECK(pod.links().size() == 5);  // lo, net1, net2 and their ifbs
  const std::set<std::string> host_links = node.host.links();

  auto del_all = [&](const std::string& netns, const std::string& what) {
    for (auto a = atts.rbegin(); a != atts.rend(); ++a) {
      PluginRun b = run_plugin(bin("bandwidth"), plugin_env("DEL", cid, netns, a->ifname, a->args),
                               a->bandwidth_conf.dump(), node.host.name());
      INFO("bandwidth DEL " << a->ifname << " " << what << ": " << b.out << b.err);
      CHECK(b.exit_code == 0);
      PluginRun m =
          node.call(macvlan, "DEL", netns, cid, a->ifname, a->args, a->macvlan_conf.dump());
      INFO("macvlan DEL " << a->ifname << " " << what << ": " << m.out << m.err);
      CHECK(m.exit_code == 0);
    }
  };
  SECTION("the pod netns is gone: DEL with CNI_NETNS empty") {
    pod.remove();
    del_all("", "without netns");
  }
  SECTION("the pod netns is gone: DEL naming the deleted netns, twice") {
    const std::string dead = pod.path();
    pod.remove();
    del_all(dead, "with a dead netns");
    del_all(dead, "with a dead netns, again");
  }
  SECTION("the pod is alive: DEL removes the shaping and the links, then again") {
    for (const auto& a : atts) {
      PluginRun b =
          run_plugin(bin("bandwidth"), plugin_env("DEL", cid, pod.path(), a.ifname, a.args),
                     a.bandwidth_conf.dump(), node.host.name());
      INFO(b.out << b.err);
      REQUIRE(b.exit_code == 0);
      CHECK(pod.exec("tc qdisc show dev " + a.ifname).find("tbf") == std::string::npos);
    }
    CHECK(pod.links() == std::set<std::string>{"lo", "net1", "net2"});
    del_all(pod.path(), "alive");
    del_all(pod.path(), "alive, again");
    CHECK(pod.links() == std::set<std::string>{"lo"});
  }
  CHECK(node.held().empty());
  CHECK(node.host.links() == host_links);
}

// multus' "cni-args" annotation lands in args.cni: args.cni.pools picks the delegate's pool
// among the NAD's, and a pool whose namespaceSelector excludes the pod's namespace (team-a) is
// refused with code 7 naming it and leaves nothing; DEL from the cached config, twice.
TEST_CASE("multus-style delegation: args.cni.pools from cni-args picks the pool",
          "[multus][pools]") {
  for (const Target& t : targets()) {
    if (t.ipam != "global-ipam") continue;
    DYNAMIC_SECTION(t.name) {
      Node node;
      TempNetns pod{"mup"};
      const std::string cid = unique_name("multuspool", 40);
      json c = node.nad(t, unique_name("mupool", 40), "198.51.100", "02:00:00:4d:02:01", "");
      c["runtimeConfig"].erase("ips");  // no requested address: the pool decides
      c["ipam"]["pools"] = json::array(
          {{{"name", "pool-a"}, {"cidr", "198.51.100.0/25"}, {"gateway", "198.51.100.1"}},
           {{"name", "pool-b"}, {"cidr", "198.51.100.128/25"}, {"namespaceSelector", "team-*"}},
           {{"name", "pool-c"}, {"cidr", "203.0.113.0/24"}, {"namespaceSelector", "other-*"}}});
      const std::string args = k8s_args(cid, "");

      json refused = c;
      refused["args"]["cni"]["pools"] = {"pool-c"};
      PluginRun r = node.call(t, "ADD", pod.path(), cid, "net1", args, refused.dump());
      INFO(t.name << " ADD naming pool-c: " << r.out << r.err);
      CHECK(r.exit_code == 1);
      CHECK(r.json().value("code", 0) == 7);
      CHECK(r.json().value("msg", "").find("pool \"pool-c\" (args.cni.pools[0]) does not select "
                                           "namespace \"team-a\"") != std::string::npos);
      CHECK(node.held().empty());
      if (t.makes_link) CHECK(pod.links() == std::set<std::string>{"lo"});
      CHECK(node.call(t, "DEL", pod.path(), cid, "net1", args, refused.dump()).exit_code == 0);

      c["args"]["cni"]["pools"] = {"pool-b"};
      const std::string cached = c.dump();
      r = node.call(t, "ADD", pod.path(), cid, "net1", args, cached);
      INFO(t.name << " ADD naming pool-b: " << r.out << r.err);
      REQUIRE(r.exit_code == 0);
      const std::string addr = r.json().at("ips").at(0).at("address");
      REQUIRE(addr.rfind("198.51.100.", 0) == 0);
      CHECK(std::stoi(addr.substr(11)) >= 128);  // pool-b, not pool-a (first in the NAD)
      CHECK(node.held().size() == 1);
      for (int round = 0; round < 2; ++round) {
        PluginRun d = node.call(t, "DEL", pod.path(), cid, "net1", args, cached);
        INFO("DEL round " << round << ": " << d.out << d.err);
        CHECK(d.exit_code == 0);
      }
      CHECK(node.held().empty());
      if (t.makes_link) CHECK(pod.links() == std::set<std::string>{"lo"});
    }
  }
}
