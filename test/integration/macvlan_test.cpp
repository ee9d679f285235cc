#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/ip.h"
#include "test/support/harness.h"

// The macvlan executable, run for real: a "host" netns holds the master (one end of a veth
// pair), a "peer" netns holds the other end with the gateway address, pods are fresh
// namespaces. IPAM is our host-local with a temporary dataDir. Nothing touches the
// machine's own namespace; every address is TEST-NET.
namespace {

using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::run_plugin;
using strait::test::sh;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

const std::vector<std::string> kVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
// The Debian reference plugins speak up to 1.0.0.
const std::vector<std::string> kUpstreamVersions = {"0.3.1", "0.4.0", "1.0.0"};
constexpr char kGateway[] = "192.0.2.1";
constexpr char kUpstreamDir[] = "/usr/lib/cni";

bool at_least_040(const std::string& v) { return v != "0.3.0" && v != "0.3.1"; }

// `ip -j <args>` in `ns`, parsed; an empty answer is an empty array.
json ip_json(const TempNetns& ns, const std::string& args) {
  std::string out = sh_ok("ip -n " + ns.name() + " -j " + args);
  if (out.find_first_not_of(" \n") == std::string::npos) return json::array();
  return json::parse(out);
}

// The link named `name` in `ns` (ip -j -d link), or null when there is none.
json find_link(const TempNetns& ns, const std::string& name) {
  for (const auto& l : ip_json(ns, "-d link show")) {
    if (l.value("ifname", "") == name) return l;
  }
  return nullptr;
}

std::vector<std::string> link_names(const TempNetns& ns) {
  std::vector<std::string> out;
  for (const auto& l : ip_json(ns, "link show")) out.push_back(l.value("ifname", ""));
  return out;
}

// "192.0.2.10/24" for each global address of `family` ("inet", "inet6") on `dev`.
std::vector<std::string> addresses(const TempNetns& ns, const std::string& dev,
                                   const std::string& family = "inet") {
  std::vector<std::string> out;
  for (const auto& l : ip_json(ns, "addr show dev " + dev)) {
    for (const auto& a : l.value("addr_info", json::array())) {
      if (a.value("family", "") != family || a.value("scope", "") != "global") continue;
      out.push_back(a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)));
    }
  }
  return out;
}

bool has_default_route_via(const TempNetns& ns, const std::string& gw, const std::string& dev,
                           const std::string& family_flag = "-4") {
  for (const auto& r : ip_json(ns, family_flag + " route show")) {
    if (r.value("dst", "") == "default" && r.value("gateway", "") == gw &&
        r.value("dev", "") == dev) {
      return true;
    }
  }
  return false;
}

bool ping(const TempNetns& from, const std::string& to) {
  const std::string cmd = to.find(':') == std::string::npos ? "ping" : "ping6";
  return sh("ip netns exec " + from.name() + " busybox " + cmd + " -c 1 -W 2 " + to) == 0;
}

std::string address_of(const json& result, size_t i = 0) {
  return result.at("ips").at(i).at("address").get<std::string>();
}

std::string ip_only(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

// One test world: host netns with the master "mst0", its veth peer "gw0" in the peer netns
// holding the gateway 192.0.2.1/24 (and 2001:db8::1/64), a lease directory, a network name.
struct Lab {
  TempNetns host{"mvh"};
  TempNetns peer{"mvp"};
  TempDir data{"strait-macvlan"};
  std::string network = unique_name("mvnet", 40);

  Lab() {
    sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0 netns " + peer.name());
    sh_ok("ip -n " + host.name() + " link set mst0 up");
    sh_ok("ip -n " + peer.name() + " link set gw0 up");
    sh_ok("ip -n " + peer.name() + " addr add 192.0.2.1/24 dev gw0");
    sh_ok("ip -n " + peer.name() + " addr add 2001:db8::1/64 dev gw0 nodad");
  }

  json ipam(const std::string& start = "192.0.2.10", const std::string& end = "192.0.2.50") const {
    json range = {{"subnet", "192.0.2.0/24"},
                  {"rangeStart", start},
                  {"rangeEnd", end},
                  {"gateway", kGateway}};
    return {{"type", "host-local"},
            {"dataDir", data.path()},
            {"ranges", json::array({json::array({range})})},
            {"routes", json::array({{{"dst", "0.0.0.0/0"}}})}};
  }

  json conf(const std::string& version, json ipam_block, const json& extra = json::object()) const {
    json c = {{"cniVersion", version},
              {"name", network},
              {"type", "macvlan"},
              {"master", "mst0"},
              {"ipam", std::move(ipam_block)}};
    for (const auto& [k, v] : extra.items()) {
      if (v.is_null()) {
        c.erase(k);
      } else {
        c[k] = v;
      }
    }
    return c;
  }

  PluginRun run(const std::string& command, const json& conf, const std::string& netns,
                const std::string& cid, const std::string& ifname = "net1",
                const std::string& cni_args = "", const std::string& binary = bin("macvlan"),
                const std::string& cni_path = "") const {
    cni::EnvMap env = plugin_env(command, cid, netns, ifname, cni_args);
    if (!cni_path.empty()) env["CNI_PATH"] = cni_path;
    return run_plugin(binary, env, conf.dump(), host.name());
  }

  // ADD that must succeed; returns the result.
  json add(const json& conf, const TempNetns& pod, const std::string& cid,
           const std::string& ifname = "net1", const std::string& cni_args = "") const {
    PluginRun r = run("ADD", conf, pod.path(), cid, ifname, cni_args);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r.json();
  }

  std::string lease_dir() const { return data.path() + "/" + network; }

  // The leased addresses (files named after an IP) in the lease directory.
  std::vector<std::string> leases() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(lease_dir(), ec)) {
      const std::string name = e.path().filename().string();
      if (cni::IpAddress::try_parse(name)) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

// The config a runtime sends for CHECK and DEL: prevResult attached from 0.4.0 on (libcni).
json with_prev(json conf, const json& prev) {
  if (at_least_040(conf.at("cniVersion").get<std::string>())) conf["prevResult"] = prev;
  return conf;
}

void check_error(const PluginRun& r, int code, const std::vector<std::string>& words) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code != 0);
  json j = r.json();
  CHECK(j.at("code") == code);
  for (const auto& w : words) CHECK_THAT(j.at("msg").get<std::string>(), Catch::Contains(w));
}

// A "CNI_PATH" directory holding exactly the given binaries (symlinks).
struct PluginDir {
  TempDir dir{"strait-cnipath"};
  explicit PluginDir(const std::vector<std::pair<std::string, std::string>>& links) {
    for (const auto& [name, target] : links) {
      std::filesystem::create_symlink(target, dir.path() + "/" + name);
    }
  }
  const std::string& path() const { return dir.path(); }
};

// The checks every ADD of the lifecycle test makes on the result and on the kernel.
void verify_added(const Lab& lab, const json& res, const std::string& version, const TempNetns& pod,
                  const std::string& mode = "bridge") {
  INFO("result: " << res.dump());
  CHECK(res.at("cniVersion") == version);
  REQUIRE(res.at("interfaces").size() == 1);
  const json& iface = res["interfaces"][0];
  CHECK(iface.at("name") == "net1");
  CHECK(iface.at("sandbox") == pod.path());
  if (version == "1.1.0") {
    CHECK(iface.at("mtu") == 1500);
  } else {
    CHECK_FALSE(iface.contains("mtu"));
  }
  REQUIRE(res.at("ips").size() == 1);
  const json& ip = res["ips"][0];
  CHECK(ip.at("interface") == 0);
  CHECK(ip.at("gateway") == kGateway);
  CHECK(ip.contains("version") == (version != "1.0.0" && version != "1.1.0"));
  CHECK(res.at("routes") == json::array({{{"dst", "0.0.0.0/0"}}}));

  json link = find_link(pod, "net1");
  REQUIRE_FALSE(link.is_null());
  CHECK(link.at("linkinfo").at("info_kind") == "macvlan");
  CHECK(link["linkinfo"].at("info_data").at("mode") == mode);
  CHECK(link.at("address") == iface.at("mac"));
  CHECK(link.at("operstate") == "UP");
  CHECK(addresses(pod, "net1") == std::vector<std::string>{address_of(res)});
  CHECK(has_default_route_via(pod, kGateway, "net1"));
  CHECK(std::filesystem::exists(lab.lease_dir() + "/" + ip_only(address_of(res))));
  // The announcement sysctl upstream sets.
  CHECK(sh_ok("ip netns exec " + pod.name() + " cat /proc/sys/net/ipv4/conf/net1/arp_notify") ==
        "1\n");
}

}  // namespace

TEST_CASE("macvlan ADD, CHECK, DEL of two pods on one master, every spec version", "[macvlan]") {
  for (const std::string& version : kVersions) {
    DYNAMIC_SECTION("cniVersion " << version) {
      Lab lab;
      TempNetns pod_a("mva");
      TempNetns pod_b("mvb");
      const json conf = lab.conf(version, lab.ipam());

      const json res_a = lab.add(conf, pod_a, "ctr-a");
      const json res_b = lab.add(conf, pod_b, "ctr-b");
      verify_added(lab, res_a, version, pod_a);
      verify_added(lab, res_b, version, pod_b);
      CHECK(address_of(res_a) != address_of(res_b));
      CHECK(lab.leases().size() == 2);

      // Bridge mode: the pods reach each other on the master and the gateway behind it.
      CHECK(ping(pod_a, ip_only(address_of(res_b))));
      CHECK(ping(pod_b, ip_only(address_of(res_a))));
      CHECK(ping(pod_a, kGateway));
      CHECK(ping(pod_b, kGateway));

      if (at_least_040(version)) {
        PluginRun ok = lab.run("CHECK", with_prev(conf, res_a), pod_a.path(), "ctr-a");
        INFO("CHECK: " << ok.out << ok.err);
        CHECK(ok.exit_code == 0);
        CHECK(ok.out.empty());

        // Without prevResult CHECK is a config error.
        check_error(lab.run("CHECK", conf, pod_a.path(), "ctr-a"), 7, {"prevResult"});

        sh_ok("ip -n " + pod_a.name() + " addr del " + address_of(res_a) + " dev net1");
        check_error(lab.run("CHECK", with_prev(conf, res_a), pod_a.path(), "ctr-a"), 999,
                    {address_of(res_a), "net1"});
      }

      // DEL removes the link and the lease; a second DEL is still success.
      PluginRun del = lab.run("DEL", with_prev(conf, res_a), pod_a.path(), "ctr-a");
      INFO("DEL: " << del.out << del.err);
      CHECK(del.exit_code == 0);
      CHECK(del.out.empty());
      CHECK(find_link(pod_a, "net1").is_null());
      CHECK(lab.leases() == std::vector<std::string>{ip_only(address_of(res_b))});
      CHECK(lab.run("DEL", with_prev(conf, res_a), pod_a.path(), "ctr-a").exit_code == 0);

      // DEL after the pod's netns is gone still releases the lease.
      pod_b.remove();
      PluginRun gone = lab.run("DEL", with_prev(conf, res_b), pod_b.path(), "ctr-b");
      INFO("DEL of a vanished netns: " << gone.out << gone.err);
      CHECK(gone.exit_code == 0);
      CHECK(lab.leases().empty());
      // And the master is untouched.
      CHECK_FALSE(find_link(lab.host, "mst0").is_null());
    }
  }
}

TEST_CASE("macvlan DEL without a usable netns releases the lease", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  const json conf = lab.conf("1.0.0", lab.ipam());
  const json res = lab.add(conf, pod, "ctr-e");
  REQUIRE(lab.leases().size() == 1);

  SECTION("empty CNI_NETNS (multus after the pod is gone)") {
    PluginRun del = lab.run("DEL", with_prev(conf, res), "", "ctr-e");
    INFO(del.out << del.err);
    CHECK(del.exit_code == 0);
    CHECK(lab.leases().empty());
    // Without a netns nothing inside it is touched.
    CHECK_FALSE(find_link(pod, "net1").is_null());
  }
  SECTION("a path that is no longer a netns (a leftover mount point)") {
    TempDir dir("strait-notns");
    const std::string file = dir.path() + "/netns";
    sh_ok("touch " + file);
    PluginRun del = lab.run("DEL", with_prev(conf, res), file, "ctr-e");
    INFO(del.out << del.err);
    CHECK(del.exit_code == 0);
    CHECK(lab.leases().empty());
    // CHECK with such a path is an environment error.
    check_error(lab.run("CHECK", with_prev(conf, res), file, "ctr-e"), 4,
                {"CNI_NETNS", "not a network namespace"});
  }
}

TEST_CASE("macvlan ADD with a taken ifname fails and changes nothing", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  sh_ok("ip -n " + pod.name() + " link add net1 type veth peer name other0");
  const json before = find_link(pod, "net1");
  const json conf = lab.conf("1.1.0", lab.ipam());

  check_error(lab.run("ADD", conf, pod.path(), "ctr-t"), 4, {"net1", "already exists"});
  CHECK(lab.leases().empty());
  json after = find_link(pod, "net1");
  REQUIRE_FALSE(after.is_null());
  CHECK(after.at("linkinfo").at("info_kind") == "veth");
  CHECK(after.at("address") == before.at("address"));

  // The runtime follows a failed ADD with DEL: the veth of that name is not ours to delete.
  PluginRun del = lab.run("DEL", conf, pod.path(), "ctr-t");
  INFO(del.out << del.err);
  CHECK(del.exit_code == 0);
  CHECK_THAT(del.err, Catch::Contains("not a macvlan"));
  CHECK_FALSE(find_link(pod, "net1").is_null());
}

TEST_CASE("macvlan DEL leaves a macvlan whose MAC is not the one of prevResult", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  const json conf = lab.conf("1.0.0", lab.ipam());
  json res = lab.add(conf, pod, "ctr-m");
  const std::string real_mac = res["interfaces"][0]["mac"];
  json stale = res;
  stale["interfaces"][0]["mac"] = "02:00:00:00:00:99";
  PluginRun del = lab.run("DEL", with_prev(conf, stale), pod.path(), "ctr-m");
  INFO(del.out << del.err);
  CHECK(del.exit_code == 0);
  CHECK(lab.leases().empty());
  json link = find_link(pod, "net1");
  REQUIRE_FALSE(link.is_null());
  CHECK(link.at("address") == real_mac);
  // With the right prevResult it goes.
  CHECK(lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-m").exit_code == 0);
  CHECK(find_link(pod, "net1").is_null());
}

TEST_CASE("macvlan ADD rolls back when IPAM or configuration fails", "[macvlan]") {
  Lab lab;

  SECTION("exhausted range: no link, the other pod's lease untouched") {
    TempNetns pod1("mvp1");
    TempNetns pod2("mvp2");
    const json conf = lab.conf("1.1.0", lab.ipam("192.0.2.10", "192.0.2.10"));
    lab.add(conf, pod1, "ctr-1");
    PluginRun r = lab.run("ADD", conf, pod2.path(), "ctr-2");
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.json().at("msg").get<std::string>(), Catch::Contains("192.0.2.10"));
    CHECK(link_names(pod2) == std::vector<std::string>{"lo"});
    CHECK(lab.leases() == std::vector<std::string>{"192.0.2.10"});
    CHECK_FALSE(find_link(pod1, "net1").is_null());
  }

  SECTION("unknown IPAM type: no link") {
    TempNetns pod("mvpod");
    json ipam = lab.ipam();
    ipam["type"] = "no-such-ipam";
    check_error(lab.run("ADD", lab.conf("1.1.0", ipam), pod.path(), "ctr-x"), 7, {"no-such-ipam"});
    CHECK(link_names(pod) == std::vector<std::string>{"lo"});
  }

  SECTION("a route that cannot be added after IPAM ADD: no link, no lease") {
    TempNetns pod("mvpod");
    json ipam = lab.ipam();
    // The gateway is not on any link of the pod: the kernel refuses the route.
    ipam["routes"].push_back({{"dst", "198.51.100.0/24"}, {"gw", "203.0.113.1"}});
    PluginRun r = lab.run("ADD", lab.conf("1.1.0", ipam), pod.path(), "ctr-r");
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.json().at("msg").get<std::string>(), Catch::Contains("198.51.100.0/24"));
    CHECK(link_names(pod) == std::vector<std::string>{"lo"});
    CHECK(lab.leases().empty());
    // The lease directory exists (IPAM ran) but holds no lease.
    CHECK(std::filesystem::exists(lab.lease_dir()));
  }
}

TEST_CASE("macvlan kills an IPAM delegate that never answers and rolls back", "[macvlan]") {
  // "static" is spawned before the link is made and collected after it, any other type after.
  for (const std::string type : {"strait-hang-ipam", "static"}) {
    DYNAMIC_SECTION("IPAM type " << type) {
      Lab lab;
      TempNetns pod("mvpod");
      TempDir path("strait-hang");
      const std::string script = path.path() + "/" + type;
      std::ofstream(script) << "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\nexec sleep 1000\n";
      std::filesystem::permissions(script, std::filesystem::perms::owner_all);
      cni::EnvMap env = plugin_env("ADD", "ctr-hang", pod.path(), "net1");
      env["CNI_PATH"] = path.path();
      env["STRAIT_DELEGATE_TIMEOUT"] = "1";  // a bound the test can wait for
      PluginRun r = run_plugin(bin("macvlan"), env, lab.conf("1.1.0", {{"type", type}}).dump(),
                               lab.host.name());
      check_error(r, 999,
                  {"plugin \"" + type +
                   "\" did not finish within 1 s and was killed (STRAIT_DELEGATE_TIMEOUT sets the "
                   "limit)"});
      CHECK(link_names(pod) == std::vector<std::string>{"lo"});
    }
  }
}

TEST_CASE("macvlan master errors create nothing", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");

  SECTION("a master that does not exist") {
    check_error(
        lab.run("ADD", lab.conf("1.1.0", lab.ipam(), {{"master", "nosuch0"}}), pod.path(), "ctr-1"),
        7, {"\"master\"", "nosuch0"});
  }
  SECTION("mtu larger than the master's") {
    check_error(lab.run("ADD", lab.conf("1.1.0", lab.ipam(), {{"mtu", 9000}}), pod.path(), "ctr-1"),
                7, {"\"mtu\"", "9000", "1500"});
  }
  SECTION("no master and no default route in the host netns") {
    check_error(
        lab.run("ADD", lab.conf("1.1.0", lab.ipam(), {{"master", nullptr}}), pod.path(), "ctr-1"),
        7, {"\"master\"", "default route"});
  }
  SECTION("a pod netns that does not exist") {
    check_error(
        lab.run("ADD", lab.conf("1.1.0", lab.ipam()), "/run/netns/strait-no-such-ns", "ctr-1"), 4,
        {"CNI_NETNS", "/run/netns/strait-no-such-ns"});
  }
  CHECK(link_names(pod) == std::vector<std::string>{"lo"});
  CHECK(lab.leases().empty());
  CHECK_FALSE(std::filesystem::exists(lab.lease_dir()));
}

TEST_CASE("macvlan takes the default route's device as master", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  sh_ok("ip -n " + lab.host.name() + " addr add 192.0.2.2/24 dev mst0");
  sh_ok("ip -n " + lab.host.name() + " route add default via 192.0.2.1 dev mst0");
  const int master_index = find_link(lab.host, "mst0").at("ifindex").get<int>();

  const json res = lab.add(lab.conf("1.0.0", lab.ipam(), {{"master", nullptr}}), pod, "ctr-d");
  json link = find_link(pod, "net1");
  REQUIRE_FALSE(link.is_null());
  CHECK(link.at("link_index") == master_index);
  CHECK(ping(pod, kGateway));
  CHECK(lab.run("DEL", with_prev(lab.conf("1.0.0", lab.ipam(), {{"master", nullptr}}), res),
                pod.path(), "ctr-d")
            .exit_code == 0);
}

TEST_CASE("macvlan with ipam {} is L2 only", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  const json conf = lab.conf("1.1.0", json::object());
  const json res = lab.add(conf, pod, "ctr-l2");
  INFO(res.dump());
  CHECK_FALSE(res.contains("ips"));
  CHECK_FALSE(res.contains("routes"));
  REQUIRE(res.at("interfaces").size() == 1);
  CHECK(res["interfaces"][0].at("name") == "net1");
  json link = find_link(pod, "net1");
  REQUIRE_FALSE(link.is_null());
  bool up = false;
  for (const auto& f : link.at("flags")) up = up || f == "UP";
  CHECK(up);
  CHECK(addresses(pod, "net1").empty());
  CHECK_FALSE(std::filesystem::exists(lab.lease_dir()));

  PluginRun check = lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-l2");
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(lab.run("STATUS", conf, "", "").exit_code == 0);
  CHECK(lab.run("GC", conf, "", "").exit_code == 0);
  CHECK(lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-l2").exit_code == 0);
  CHECK(find_link(pod, "net1").is_null());
}

TEST_CASE("macvlan MAC from config, CNI_ARGS and runtimeConfig", "[macvlan]") {
  Lab lab;
  TempNetns pod1("mvm1");
  TempNetns pod2("mvm2");
  TempNetns pod3("mvm3");
  const json conf = lab.conf("1.0.0", lab.ipam(), {{"mac", "02:00:00:00:aa:01"}});

  json r1 = lab.add(conf, pod1, "ctr-1");
  CHECK(r1["interfaces"][0]["mac"] == "02:00:00:00:aa:01");
  CHECK(find_link(pod1, "net1").at("address") == "02:00:00:00:aa:01");

  // host-local refuses MAC= unless told to ignore unknown keys, as runtimes do.
  json r2 = lab.add(conf, pod2, "ctr-2", "net1", "IgnoreUnknown=1;MAC=02:00:00:00:aa:02");
  CHECK(r2["interfaces"][0]["mac"] == "02:00:00:00:aa:02");
  CHECK(find_link(pod2, "net1").at("address") == "02:00:00:00:aa:02");

  json conf3 = conf;
  conf3["runtimeConfig"] = {{"mac", "02:00:00:00:aa:03"}};
  json r3 = lab.add(conf3, pod3, "ctr-3", "net1", "IgnoreUnknown=1;MAC=02:00:00:00:aa:02");
  CHECK(r3["interfaces"][0]["mac"] == "02:00:00:00:aa:03");
  CHECK(find_link(pod3, "net1").at("address") == "02:00:00:00:aa:03");

  // CHECK compares the MAC with prevResult.
  json wrong = r1;
  wrong["interfaces"][0]["mac"] = "02:00:00:00:aa:09";
  check_error(lab.run("CHECK", with_prev(conf, wrong), pod1.path(), "ctr-1"), 999,
              {"MAC", "02:00:00:00:aa:01", "02:00:00:00:aa:09"});

  // A bad MAC= is an environment error, before anything is created.
  TempNetns pod4("mvm4");
  check_error(lab.run("ADD", conf, pod4.path(), "ctr-4", "net1", "IgnoreUnknown=1;MAC=zz"), 4,
              {"CNI_ARGS MAC", "zz"});
  CHECK(link_names(pod4) == std::vector<std::string>{"lo"});
  CHECK(lab.leases().size() == 3);
}

TEST_CASE("macvlan mtu, mode and bcqueuelen reach the kernel", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  const json conf =
      lab.conf("1.1.0", lab.ipam(), {{"mtu", 1400}, {"mode", "private"}, {"bcqueuelen", 2048}});
  const json res = lab.add(conf, pod, "ctr-o");
  CHECK(res["interfaces"][0].at("mtu") == 1400);
  json link = find_link(pod, "net1");
  REQUIRE_FALSE(link.is_null());
  CHECK(link.at("mtu") == 1400);
  CHECK(link["linkinfo"]["info_data"].at("mode") == "private");
  CHECK(link["linkinfo"]["info_data"].at("bcqueuelen") == 2048);

  PluginRun ok = lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-o");
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  // A config whose mode differs from the device fails CHECK naming both modes.
  json vepa = conf;
  vepa["mode"] = "vepa";
  check_error(lab.run("CHECK", with_prev(vepa, res), pod.path(), "ctr-o"), 999,
              {"private", "vepa"});
  // A route of prevResult that is gone fails CHECK.
  sh_ok("ip -n " + pod.name() + " route del default");
  check_error(lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-o"), 999,
              {"route", "0.0.0.0/0"});
}

TEST_CASE("macvlan modes vepa and passthru", "[macvlan]") {
  for (const std::string mode : {"vepa", "passthru"}) {
    DYNAMIC_SECTION("mode " << mode) {
      Lab lab;
      TempNetns pod("mvpod");
      const json conf = lab.conf("1.1.0", lab.ipam(), {{"mode", mode}});
      const json res = lab.add(conf, pod, "ctr-" + mode);
      verify_added(lab, res, "1.1.0", pod, mode);
      CHECK(ping(pod, kGateway));
      CHECK(lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-" + mode).exit_code == 0);
      CHECK(lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-" + mode).exit_code == 0);
      CHECK(find_link(pod, "net1").is_null());
      CHECK(lab.leases().empty());
    }
  }
}

TEST_CASE("macvlan linkInContainer: the master lives in the pod netns", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  // The pod's own master, a veth end whose peer (in the peer netns) holds 203.0.113.1.
  sh_ok("ip -n " + pod.name() + " link add pm0 type veth peer name gw1 netns " + lab.peer.name());
  sh_ok("ip -n " + pod.name() + " link set pm0 up");
  sh_ok("ip -n " + lab.peer.name() + " link set gw1 up");
  sh_ok("ip -n " + lab.peer.name() + " addr add 203.0.113.1/24 dev gw1");

  json range = {{"subnet", "203.0.113.0/24"},
                {"rangeStart", "203.0.113.10"},
                {"rangeEnd", "203.0.113.20"},
                {"gateway", "203.0.113.1"}};
  json ipam = {{"type", "host-local"},
               {"dataDir", lab.data.path()},
               {"ranges", json::array({json::array({range})})}};
  const json conf = lab.conf("1.1.0", ipam, {{"master", "pm0"}, {"linkInContainer", true}});
  const json res = lab.add(conf, pod, "ctr-lic");
  json link = find_link(pod, "net1");
  REQUIRE_FALSE(link.is_null());
  // A lower device in the same netns is shown by name.
  CHECK(link.at("link") == "pm0");
  CHECK_FALSE(link.contains("link_netnsid"));
  CHECK(addresses(pod, "net1") == std::vector<std::string>{address_of(res)});
  CHECK(ping(pod, "203.0.113.1"));
  // Nothing appeared in the host netns.
  CHECK(link_names(lab.host) == std::vector<std::string>{"lo", "mst0"});

  CHECK(lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-lic").exit_code == 0);
  CHECK(lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-lic").exit_code == 0);
  CHECK(find_link(pod, "net1").is_null());
  CHECK_FALSE(find_link(pod, "pm0").is_null());

  // Without linkInContainer the host netns has no pm0.
  check_error(lab.run("ADD", lab.conf("1.1.0", ipam, {{"master", "pm0"}}), pod.path(), "ctr-x"), 7,
              {"pm0", "host netns"});
}

TEST_CASE("macvlan dual-stack: IPv6 settles before ADD returns", "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  json ipam = lab.ipam();
  ipam["ranges"].push_back(json::array({{{"subnet", "2001:db8::/64"},
                                         {"rangeStart", "2001:db8::10"},
                                         {"rangeEnd", "2001:db8::20"},
                                         {"gateway", "2001:db8::1"}}}));
  ipam["routes"].push_back({{"dst", "::/0"}});
  const json conf = lab.conf("1.1.0", ipam);
  // The gateway still remembers an older owner of both addresses (a pod that went away).
  for (const char* ip : {"192.0.2.10", "2001:db8::10"}) {
    sh_ok("ip -n " + lab.peer.name() + " neigh add " + ip +
          " lladdr 02:00:00:00:00:77 dev gw0 nud stale");
  }
  const json res = lab.add(conf, pod, "ctr-6");
  REQUIRE(res.at("ips").size() == 2);
  REQUIRE(address_of(res, 0) == "192.0.2.10/24");
  REQUIRE(address_of(res, 1) == "2001:db8::10/64");
  // The gratuitous ARP and unsolicited NA the kernel sent taught it the new MAC. They are
  // on their way when ADD returns (the NA leaves when DAD completes): wait for both entries.
  const std::string mac = res["interfaces"][0]["mac"];
  json neigh;
  auto learned = [&] {
    neigh = ip_json(lab.peer, "neigh show dev gw0");
    int updated = 0;
    for (const auto& n : neigh) updated += n.value("lladdr", "") == mac;
    return updated == 2;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!learned() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO("gateway's neighbours: " << neigh.dump());
  for (const auto& n : neigh) CHECK(n.at("lladdr") == mac);
  CHECK(neigh.size() == 2);
  const std::string v6 = address_of(res, 1);
  CHECK(addresses(pod, "net1", "inet6") == std::vector<std::string>{v6});
  // No tentative address is left: DAD finished before the result was printed.
  std::string details = sh_ok("ip -n " + pod.name() + " -6 addr show dev net1");
  CHECK_THAT(details, !Catch::Contains("tentative"));
  CHECK(has_default_route_via(pod, "2001:db8::1", "net1", "-6"));
  CHECK(ping(pod, "2001:db8::1"));
  CHECK(ping(pod, kGateway));
  CHECK(sh_ok("ip netns exec " + pod.name() + " cat /proc/sys/net/ipv6/conf/net1/ndisc_notify") ==
        "1\n");
  CHECK(lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-6").exit_code == 0);
  CHECK(lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-6").exit_code == 0);
  CHECK(lab.leases().empty());
}

TEST_CASE("macvlan ADD of an IPv6 address another host holds fails DAD and rolls back",
          "[macvlan]") {
  Lab lab;
  TempNetns pod("mvpod");
  json ipam = lab.ipam();
  ipam["ranges"] = json::array({json::array({{{"subnet", "2001:db8::/64"},
                                              {"rangeStart", "2001:db8::10"},
                                              {"rangeEnd", "2001:db8::10"},
                                              {"gateway", "2001:db8::1"}}})});
  ipam["routes"] = json::array({{{"dst", "::/0"}}});
  // The gateway's side already answers for the address IPAM hands out.
  sh_ok("ip -n " + lab.peer.name() + " addr add 2001:db8::10/64 dev gw0 nodad");
  check_error(lab.run("ADD", lab.conf("1.1.0", ipam), pod.path(), "ctr-dad"), 999,
              {"2001:db8::10", "\"net1\"", "failed duplicate address detection"});
  CHECK(link_names(pod) == std::vector<std::string>{"lo"});
  CHECK(lab.leases().empty());
}

TEST_CASE("macvlan STATUS and GC forward to IPAM", "[macvlan]") {
  Lab lab;
  TempNetns pod1("mvg1");
  TempNetns pod2("mvg2");
  const json conf = lab.conf("1.1.0", lab.ipam("192.0.2.10", "192.0.2.11"));
  PluginRun st = lab.run("STATUS", conf, "", "");
  INFO(st.out << st.err);
  CHECK(st.exit_code == 0);

  const json r1 = lab.add(conf, pod1, "ctr-g1");
  const json r2 = lab.add(conf, pod2, "ctr-g2");
  REQUIRE(lab.leases().size() == 2);
  // The range is used up: host-local says "not available".
  check_error(lab.run("STATUS", conf, "", ""), 50, {});

  // GC keeps the valid attachment's lease and releases the other.
  json gc = conf;
  gc["cni.dev/valid-attachments"] = json::array({{{"containerID", "ctr-g1"}, {"ifname", "net1"}}});
  PluginRun g = lab.run("GC", gc, "", "");
  INFO(g.out << g.err);
  CHECK(g.exit_code == 0);
  CHECK(lab.leases() == std::vector<std::string>{ip_only(address_of(r1))});
  // Without the key nothing is released.
  CHECK(lab.run("GC", conf, "", "").exit_code == 0);
  CHECK(lab.leases().size() == 1);

  // A missing master makes the plugin unavailable.
  check_error(lab.run("STATUS", lab.conf("1.1.0", lab.ipam(), {{"master", "gone0"}}), "", ""), 50,
              {"gone0"});
  (void)r2;
}

TEST_CASE("macvlan interop: our macvlan with the reference host-local", "[macvlan][interop]") {
  PluginDir path({{"host-local", std::string(kUpstreamDir) + "/host-local"}});
  for (const std::string& version : kUpstreamVersions) {
    DYNAMIC_SECTION("cniVersion " << version) {
      Lab lab;
      TempNetns pod("mvi");
      const json conf = lab.conf(version, lab.ipam());
      PluginRun add =
          lab.run("ADD", conf, pod.path(), "ctr-i", "net1", "", bin("macvlan"), path.path());
      INFO(add.out << add.err);
      REQUIRE(add.exit_code == 0);
      const json res = add.json();
      verify_added(lab, res, version, pod);
      CHECK(ping(pod, kGateway));
      if (at_least_040(version)) {
        PluginRun check = lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-i", "net1", "",
                                  bin("macvlan"), path.path());
        INFO(check.out << check.err);
        CHECK(check.exit_code == 0);
      }
      PluginRun del = lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-i", "net1", "",
                              bin("macvlan"), path.path());
      INFO(del.out << del.err);
      CHECK(del.exit_code == 0);
      CHECK(find_link(pod, "net1").is_null());
      CHECK(lab.leases().empty());
    }
  }
}

TEST_CASE("macvlan interop: the reference macvlan with our host-local", "[macvlan][interop]") {
  PluginDir path({{"host-local", bin("host-local")}});
  const std::string upstream = std::string(kUpstreamDir) + "/macvlan";
  for (const std::string& version : kUpstreamVersions) {
    DYNAMIC_SECTION("cniVersion " << version) {
      Lab lab;
      TempNetns pod("mvu");
      const json conf = lab.conf(version, lab.ipam());
      PluginRun add = lab.run("ADD", conf, pod.path(), "ctr-u", "net1", "", upstream, path.path());
      INFO(add.out << add.err);
      REQUIRE(add.exit_code == 0);
      const json res = add.json();
      CHECK(lab.leases() == std::vector<std::string>{ip_only(address_of(res))});
      CHECK(ping(pod, kGateway));
      if (at_least_040(version)) {
        PluginRun check = lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-u", "net1", "",
                                  upstream, path.path());
        INFO(check.out << check.err);
        CHECK(check.exit_code == 0);
        // Our macvlan accepts the reference plugin's result as prevResult.
        PluginRun ours = lab.run("CHECK", with_prev(conf, res), pod.path(), "ctr-u");
        INFO(ours.out << ours.err);
        CHECK(ours.exit_code == 0);
      }
      // A node switching binaries: our DEL cleans up what the reference ADD made.
      PluginRun del = lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-u");
      INFO(del.out << del.err);
      CHECK(del.exit_code == 0);
      CHECK(find_link(pod, "net1").is_null());
      CHECK(lab.leases().empty());
    }
  }
}

TEST_CASE("macvlan interop: the reference macvlan deletes what ours added", "[macvlan][interop]") {
  Lab lab;
  TempNetns pod("mvx");
  const json conf = lab.conf("1.0.0", lab.ipam());
  const json res = lab.add(conf, pod, "ctr-x");
  PluginRun del = lab.run("DEL", with_prev(conf, res), pod.path(), "ctr-x", "net1", "",
                          std::string(kUpstreamDir) + "/macvlan");
  INFO(del.out << del.err);
  CHECK(del.exit_code == 0);
  CHECK(find_link(pod, "net1").is_null());
  CHECK(lab.leases().empty());
}
