// Chains through cnitool (the runtime side): the reference bridge then our bandwidth, limits
// from CAP_ARGS (the capability kubelet's runtime fills from the pod's annotations); our macvlan
// then our bandwidth, limits from the conflist. cnitool runs in a host netns made here and
// caches, checks and deletes exactly as libcni does.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/process/invoke.h"
#include "test/support/harness.h"
#include "test/support/pod_fixture.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::sh;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

// A conflist directory, a cache and a CNI_PATH of exactly the chain's binaries.
struct Chain {
  TempNetns host{"bch"};
  TempDir conf_dir{"strait-bwchain-conf"};
  TempDir cache{"strait-bwchain-cache"};
  TempDir path{"strait-bwchain-path"};
  TempDir data{"strait-bwchain-data"};
  std::string network = unique_name("bwchain", 40);

  explicit Chain(const std::vector<std::pair<std::string, std::string>>& binaries) {
    host.exec("ip link set lo up");
    for (const auto& [name, target] : binaries)
      fs::create_symlink(target, path.path() + "/" + name);
  }

  void write(const json& plugins) const {
    json list = {{"cniVersion", "1.0.0"}, {"name", network}, {"plugins", plugins}};
    std::ofstream(conf_dir.path() + "/10-bw.conflist") << list.dump(2);
  }

  cni::ExecResult tool(const std::vector<std::string>& args, const json& cap_args = nullptr) const {
    std::vector<std::string> argv = {"/usr/bin/ip", "netns", "exec", host.name(), bin("cnitool")};
    argv.insert(argv.end(), args.begin(), args.end());
    cni::EnvMap env = {{"NETCONFPATH", conf_dir.path()},
                       {"CNI_PATH", path.path()},
                       {"CNI_CACHE_DIR", cache.path()},
                       {"CNI_IFNAME", "eth0"},
                       {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
    if (!cap_args.is_null()) env["CAP_ARGS"] = cap_args.dump();
    return cni::spawn(argv, env, "");
  }
};

json ok_json(const cni::ExecResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

void ok(const cni::ExecResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

// The one tbf line of `tc qdisc show dev <dev>` in ns ("" when none).
std::string tbf_of(const TempNetns& ns, const std::string& dev) {
  std::string out;
  if (sh("tc -n " + ns.name() + " qdisc show dev " + dev, &out) != 0) return "";
  const size_t at = out.find("qdisc tbf 1: ");
  return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}

}  // namespace

TEST_CASE("cnitool chain: the reference bridge, then our bandwidth with limits from CAP_ARGS",
          "[bandwidth][cnitool]") {
  const std::string ref = strait::test::kReferenceDir;
  Chain c({{"bridge", ref + "/bridge"},
           {"host-local", ref + "/host-local"},
           {"bandwidth", bin("bandwidth")}});
  json bridge = {
      {"type", "bridge"},
      {"bridge", unique_name("bcbr")},
      {"isGateway", true},
      {"ipam", {{"type", "host-local"}, {"subnet", "10.127.0.0/24"}, {"dataDir", c.data.path()}}}};
  json bw = {{"type", "bandwidth"}, {"capabilities", {{"bandwidth", true}}}};
  c.write({bridge, bw});
  const json caps = {{"bandwidth",
                      {{"ingressRate", 40000000},
                       {"ingressBurst", 4294967295u},
                       {"egressRate", 20000000},
                       {"egressBurst", 4294967295u}}}};
  TempNetns pod("bcp");

  json res = ok_json(c.tool({"add", c.network, pod.path()}, caps));
  const std::string ifb = res.at("interfaces").back().at("name");
  CHECK(ifb.rfind("bwp", 0) == 0);
  std::string veth;
  for (const auto& i : res["interfaces"]) {
    if (!i.contains("sandbox") && i["name"] != bridge["bridge"] && i["name"] != ifb)
      veth = i["name"];
  }
  REQUIRE_FALSE(veth.empty());
  // Ingress on the host veth, egress on the ifb; both from CAP_ARGS, bursts capped.
  CHECK_THAT(tbf_of(c.host, veth), Catch::Contains("rate 40Mbit"));
  CHECK_THAT(tbf_of(c.host, ifb), Catch::Contains("rate 20Mbit"));
  CHECK(sh_ok("tc -n " + c.host.name() + " filter show dev " + veth + " ingress")
            .find("Redirect to device " + ifb) != std::string::npos);

  ok(c.tool({"check", c.network, pod.path()}, caps));
  ok(c.tool({"del", c.network, pod.path()}, caps));
  CHECK(sh("ip -n " + c.host.name() + " link show " + ifb + " >/dev/null 2>&1") != 0);
  CHECK(sh("ip -n " + c.host.name() + " link show " + veth + " >/dev/null 2>&1") != 0);
  ok(c.tool({"del", c.network, pod.path()}, caps));  // again: idempotent
}

TEST_CASE("cnitool chain: our macvlan, then our bandwidth with limits from the conflist",
          "[bandwidth][cnitool]") {
  Chain c({{"macvlan", bin("macvlan")},
           {"host-local", bin("host-local")},
           {"bandwidth", bin("bandwidth")}});
  c.host.exec(
      "ip link add mst0 type veth peer name gw0 && ip link set mst0 up && ip link set gw0 up");
  json macvlan = {{"type", "macvlan"},
                  {"master", "mst0"},
                  {"ipam",
                   {{"type", "host-local"},
                    {"dataDir", c.data.path()},
                    {"ranges", json::array({json::array({{{"subnet", "192.0.2.0/24"}}})})}}}};
  json bw = {{"type", "bandwidth"},
             {"ingressRate", 30000000},
             {"ingressBurst", 300000},
             {"egressRate", 10000000},
             {"egressBurst", 100000},
             // runtimeConfig is ignored when the conflist has limits (upstream's precedence).
             {"capabilities", {{"bandwidth", true}}}};
  c.write({macvlan, bw});
  const json caps = {{"bandwidth", {{"ingressRate", 1000000}, {"ingressBurst", 10000}}}};
  TempNetns pod("bcm");
  const std::set<std::string> host_links = c.host.links();

  json res = ok_json(c.tool({"add", c.network, pod.path()}, caps));
  const json& ifb = res.at("interfaces").back();
  CHECK(ifb.at("sandbox") == pod.path());
  const std::string ifb_name = ifb.at("name");
  CHECK_THAT(tbf_of(pod, "eth0"), Catch::Contains("rate 10Mbit"));
  CHECK_THAT(tbf_of(pod, ifb_name), Catch::Contains("rate 30Mbit"));
  CHECK(c.host.links() == host_links);

  ok(c.tool({"check", c.network, pod.path()}, caps));
  ok(c.tool({"del", c.network, pod.path()}, caps));
  CHECK(pod.links() == std::set<std::string>{"lo"});
  ok(c.tool({"del", c.network, pod.path()}, caps));
  CHECK(c.host.links() == host_links);
}
