#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/node_lock.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/skel.h"
#include "plugins/global-ipam/global_ipam.h"
#include "test/support/temp_dir.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Dir = strait::unit::TmpDir;

class NoExec : public cni::ExecRunner {
 public:
  cni::ExecResult run(const std::string& path, const cni::EnvMap&, std::string_view) override {
    FAIL("global-ipam must not exec anything, tried " << path);
    return {};
  }
};

struct Out {
  int rc;
  json out;
  std::string err;
};

// One invocation through skel, as the executable would run it.
Out run(const std::string& command, const json& conf, const std::string& id = "c1",
        const std::string& ifname = "eth0", const std::string& cni_args = "",
        const std::string& node = "node-a") {
  cni::EnvMap env = {{"CNI_COMMAND", command},      {"CNI_CONTAINERID", id},
                     {"CNI_NETNS", "/run/netns/x"}, {"CNI_IFNAME", ifname},
                     {"CNI_PATH", "/nonexistent"},  {"K8S_NODE_NAME", node}};
  if (!cni_args.empty()) env["CNI_ARGS"] = cni_args;
  std::ostringstream out;
  std::ostringstream err;
  NoExec exec;
  std::string input = conf.dump();
  int rc = cni::skel_run(global_ipam::plugin(), cni::Io{env, input, out, err, exec});
  json j = out.str().empty() ? json() : json::parse(out.str());
  return {rc, j, err.str()};
}

json config(const std::string& store, const std::string& version = "1.1.0") {
  return {{"cniVersion", version},
          {"name", "net1"},
          {"type", "macvlan"},
          {"ipam",
           {{"type", "global-ipam"},
            {"pools",
             {{{"name", "v4"}, {"cidr", "10.20.0.0/24"}, {"gateway", "10.20.0.1"}},
              {{"name", "v6"}, {"cidr", "fd00:20::/64"}}}},
            {"routes", {{{"dst", "0.0.0.0/0"}}}},
            {"store", {{"type", "file"}, {"path", store}}},
            {"nodeLockDir", store + "-locks"}}}};
}

}  // namespace

TEST_CASE("global-ipam ADD, repeated ADD, CHECK, DEL", "[global-ipam][verbs]") {
  Dir d;
  json conf = config(d.path() + "/store");
  Out add = run("ADD", conf);
  REQUIRE(add.rc == 0);
  INFO(add.out.dump());
  REQUIRE(add.out["ips"].size() == 2);
  std::string v4 = add.out["ips"][0]["address"];
  std::string v6 = add.out["ips"][1]["address"];
  CHECK(v4.substr(0, 6) == "10.20.");
  CHECK(v4.substr(v4.size() - 3) == "/24");  // the pool's prefix
  CHECK(add.out["ips"][0]["gateway"] == "10.20.0.1");
  CHECK_FALSE(add.out["ips"][1].contains("gateway"));
  CHECK(v6.substr(0, 8) == "fd00:20:");
  CHECK(v6.substr(v6.size() - 3) == "/64");
  CHECK(add.out["routes"] == json::parse(R"([{"dst":"0.0.0.0/0"}])"));
  CHECK(add.out["cniVersion"] == "1.1.0");

  Out again = run("ADD", conf);
  REQUIRE(again.rc == 0);
  CHECK(again.out["ips"] == add.out["ips"]);

  json chk = conf;
  chk["prevResult"] = add.out;
  CHECK(run("CHECK", chk).rc == 0);
  json wrong = chk;
  wrong["prevResult"]["ips"][0]["address"] = "10.20.0.200/24";
  Out bad = run("CHECK", wrong);
  CHECK(bad.rc == 1);
  CHECK(bad.out["code"] == 103);
  CHECK(bad.out["msg"] ==
        "global-ipam: prevResult address 10.20.0.200 is not held by net1/c1/eth0");
  Out other = run("CHECK", conf, "c2");
  CHECK(other.out["code"] == 103);
  CHECK(other.out["msg"] == "global-ipam: no address is held by net1/c2/eth0");

  REQUIRE(run("DEL", conf).rc == 0);
  CHECK(run("DEL", conf).rc == 0);  // idempotent
  CHECK(run("CHECK", chk).out["code"] == 103);
  CHECK(run("DEL", conf, "never-added").rc == 0);
}

TEST_CASE("global-ipam results in old spec versions", "[global-ipam][verbs]") {
  Dir d;
  for (const char* v : {"0.3.1", "0.4.0", "1.0.0"}) {
    Out add = run("ADD", config(d.path() + "/store", v), std::string("c-") + v);
    REQUIRE(add.rc == 0);
    CHECK(add.out["cniVersion"] == v);
    CHECK(add.out["ips"].size() == 2);
  }
}

TEST_CASE("global-ipam requested address through CNI_ARGS", "[global-ipam][verbs]") {
  Dir d;
  json conf = config(d.path() + "/store");
  Out add = run("ADD", conf, "c1", "eth0", "IgnoreUnknown=1;IP=10.20.0.77");
  REQUIRE(add.rc == 0);
  CHECK(add.out["ips"][0]["address"] == "10.20.0.77/24");
  Out taken = run("ADD", conf, "c2", "eth0", "IP=10.20.0.77");
  CHECK(taken.rc == 1);
  CHECK(taken.out["code"] == 101);
  CHECK(taken.out["msg"] ==
        "requested IP address 10.20.0.77 (CNI_ARGS IP) is not available in pool v4 (held by "
        "net1/c1/eth0)");
  Out gw = run("ADD", conf, "c3", "eth0", "IP=10.20.0.1");
  CHECK(gw.out["code"] == 101);
}

TEST_CASE("global-ipam config errors are code 7", "[global-ipam][verbs]") {
  Dir d;
  json conf = config(d.path() + "/store");
  conf["ipam"]["pools"][1] = {{"name", "v4b"}, {"cidr", "10.20.0.128/25"}};
  Out o = run("ADD", conf);
  CHECK(o.rc == 1);
  CHECK(o.out["code"] == 7);
  CHECK(o.out["msg"] ==
        "invalid config: \"ipam.pools[1].cidr\": pool v4b (10.20.0.128/25) overlaps pool v4 "
        "(10.20.0.0/24)");
  CHECK_FALSE(fs::exists(d.path() + "/blocks"));
}

TEST_CASE("global-ipam exhausted pool: code 100 naming it, STATUS 50", "[global-ipam][verbs]") {
  Dir d;
  json conf = {{"cniVersion", "1.1.0"},
               {"name", "net1"},
               {"type", "x"},
               {"ipam",
                {{"type", "global-ipam"},
                 {"pools", {{{"name", "tiny"}, {"cidr", "192.0.2.0/30"}, {"blockSize", 30}}}},
                 {"store", {{"path", d.path() + "/store"}}},
                 {"nodeLockDir", d.path() + "/locks"}}}};
  CHECK(run("STATUS", conf).rc == 0);
  REQUIRE(run("ADD", conf, "c1").rc == 0);
  REQUIRE(run("ADD", conf, "c2").rc == 0);
  Out full = run("ADD", conf, "c3");
  CHECK(full.rc == 1);
  CHECK(full.out["code"] == 100);
  CHECK(full.out["msg"] == "pool tiny exhausted");
  Out status = run("STATUS", conf);
  CHECK(status.rc == 1);
  CHECK(status.out["code"] == 50);
  CHECK(status.out["msg"] == "global-ipam: pool tiny exhausted");
  // Another node: the block is node-a's, but it may borrow... from a full block: exhausted.
  CHECK(run("ADD", conf, "c4", "eth0", "", "node-b").out["code"] == 100);
  // GC with c2 valid frees c1's address.
  json gc = conf;
  gc["cni.dev/valid-attachments"] = {{{"containerID", "c2"}, {"ifname", "eth0"}}};
  REQUIRE(run("GC", gc).rc == 0);
  CHECK(run("STATUS", conf).rc == 0);
  Out again = run("ADD", conf, "c3");
  CHECK(again.rc == 0);
  CHECK(again.out["ips"][0]["address"] == "192.0.2.1/30");
}

TEST_CASE("global-ipam GC: absent key keeps everything, other nodes untouched",
          "[global-ipam][verbs]") {
  Dir d;
  json conf = config(d.path() + "/store");
  REQUIRE(run("ADD", conf, "c1").rc == 0);
  REQUIRE(run("ADD", conf, "c2").rc == 0);
  REQUIRE(run("ADD", conf, "c3", "eth0", "", "node-b").rc == 0);
  REQUIRE(run("GC", conf).rc == 0);  // no key: nothing
  json c1 = conf;
  c1["prevResult"] = run("ADD", conf, "c1").out;
  CHECK(run("CHECK", c1, "c1").rc == 0);
  json gc = conf;
  gc["cni.dev/valid-attachments"] = json::array();
  REQUIRE(run("GC", gc).rc == 0);  // node-a: nothing valid
  CHECK(run("CHECK", conf, "c1").out["code"] == 103);
  CHECK(run("CHECK", conf, "c2").out["code"] == 103);
  CHECK(run("CHECK", conf, "c3", "eth0", "", "node-b").rc == 0);  // node-b's
}

TEST_CASE("global-ipam node lock: single flight per node, best effort", "[global-ipam][verbs]") {
  Dir d;
  auto a = ipam::NodeLock::acquire(d.path() + "/locks", "n1", std::chrono::milliseconds(50));
  CHECK(a.held());
  CHECK(a.why_not().empty());
  CHECK(a.queue_dir() == d.path() + "/locks/n1.queue");
  CHECK(fs::exists(d.path() + "/locks/n1.queue/1"));  // a's ticket
  // Another waiter waits its turn, then goes on without it (and leaves no ticket behind).
  auto b = ipam::NodeLock::acquire(d.path() + "/locks", "n1", std::chrono::milliseconds(50));
  CHECK_FALSE(b.held());
  CHECK(b.why_not() ==
        "not our turn in \"" + d.path() + "/locks/n1.queue\" after 50 ms (ticket 2 waits for 1)");
  CHECK_FALSE(fs::exists(d.path() + "/locks/n1.queue/2"));
  // Other nodes are not affected; no directory means no lock, no complaint.
  CHECK(ipam::NodeLock::acquire(d.path() + "/locks", "n2", std::chrono::milliseconds(50)).held());
  auto none = ipam::NodeLock::acquire("", "n1", std::chrono::milliseconds(50));
  CHECK_FALSE(none.held());
  CHECK(none.why_not().empty());
  { std::ofstream(d.path() + "/file") << "x"; }
  auto bad = ipam::NodeLock::acquire(d.path() + "/file", "n1", std::chrono::milliseconds(50));
  CHECK_FALSE(bad.held());
  CHECK(bad.why_not().find("cannot create") == 0);
  // Released: the next one gets it at once.
  a = ipam::NodeLock();
  CHECK_FALSE(fs::exists(d.path() + "/locks/n1.queue/1"));
  CHECK(ipam::NodeLock::acquire(d.path() + "/locks", "n1", std::chrono::milliseconds(50)).held());
  a = ipam::NodeLock::acquire(d.path() + "/locks", "n1", std::chrono::milliseconds(50));
  REQUIRE(a.held());
  // An ADD while another process holds this node's lock waits, then still succeeds.
  json conf = config(d.path() + "/store");
  conf["ipam"]["nodeLockDir"] = d.path() + "/locks";
  conf["ipam"]["store"]["timeoutMs"] = 100;
  Out add = run("ADD", conf, "c1", "eth0", "", "n1");
  CHECK(add.rc == 0);
  CHECK(add.err.find("going on without the node lock") != std::string::npos);
}

TEST_CASE("global-ipam STATUS: an unusable store is code 50", "[global-ipam][verbs]") {
  Dir d;
  std::string file = d.path() + "/not-a-dir";
  { std::ofstream(file) << "x"; }
  json conf = config(file + "/store");
  Out o = run("STATUS", conf);
  CHECK(o.rc == 1);
  CHECK(o.out["code"] == 50);
  Out add = run("ADD", conf);
  CHECK(add.out["code"] == 5);
  CHECK(add.out["msg"].get<std::string>().find("not-a-dir/store") != std::string::npos);
}

TEST_CASE("global-ipam pool selection: annotations, args.cni.pools, namespaceSelector",
          "[global-ipam][verbs][pools]") {
  Dir d;
  json conf = config(d.path() + "/store");
  conf["ipam"]["pools"].push_back({{"name", "v4-team"}, {"cidr", "10.21.0.0/24"}});
  conf["ipam"]["pools"].push_back(
      {{"name", "v4-sys"}, {"cidr", "10.22.0.0/24"}, {"namespaceSelector", "kube-*"}});
  const std::string ns = "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system";

  json annotated = conf;
  annotated["runtimeConfig"] = {
      {"io.kubernetes.cri.pod-annotations", {{"strait.io/ipv4pools", R"(["v4-sys"])"}}}};
  Out add = run("ADD", annotated, "c1", "eth0", ns);
  REQUIRE(add.rc == 0);
  REQUIRE(add.out["ips"].size() == 2);
  CHECK(add.out["ips"][0]["address"].get<std::string>().rfind("10.22.0.", 0) == 0);
  CHECK(add.out["ips"][1]["address"].get<std::string>().rfind("fd00:20:", 0) == 0);
  json chk = annotated;
  chk["prevResult"] = add.out;
  CHECK(run("CHECK", chk, "c1", "eth0", ns).rc == 0);

  // args.cni.pools beats the annotation.
  json both = annotated;
  both["args"] = {{"cni", {{"pools", {"v4-team"}}}}};
  Out by_args = run("ADD", both, "c2", "eth0", ns);
  REQUIRE(by_args.rc == 0);
  CHECK(by_args.out["ips"][0]["address"].get<std::string>().rfind("10.21.0.", 0) == 0);

  // The namespace filter: another namespace may not name v4-sys, and nothing is taken.
  Out refused = run("ADD", annotated, "c3", "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default");
  CHECK(refused.rc == 1);
  CHECK(refused.out["code"] == 7);
  CHECK(refused.out["msg"] ==
        "invalid config: pool \"v4-sys\" (annotation strait.io/ipv4pools) does not select "
        "namespace \"default\" (namespaceSelector \"kube-*\")");
  CHECK_FALSE(fs::exists(d.path() + "/store/handles/net1/c3"));
  CHECK(run("DEL", annotated, "c3", "eth0", ns).rc == 0);  // DEL does not look at the choice

  REQUIRE(run("DEL", annotated, "c1", "eth0", ns).rc == 0);
  REQUIRE(run("DEL", both, "c2", "eth0", ns).rc == 0);
}

TEST_CASE("global-ipam pool selection errors leave no store behind",
          "[global-ipam][verbs][pools]") {
  Dir d;
  json conf = config(d.path() + "/store");
  json bad = conf;
  bad["args"] = {{"cni", {{"pools", {"missing"}}}}};
  Out o = run("ADD", bad);
  CHECK(o.out["code"] == 7);
  CHECK(
      o.out["msg"] ==
      "invalid config: pool \"missing\" (args.cni.pools[0]) does not exist; the pools are v4, v6");
  json malformed = conf;
  malformed["runtimeConfig"] = {
      {"io.kubernetes.cri.pod-annotations", {{"strait.io/ipv6pools", "v6"}}}};
  Out m = run("ADD", malformed);
  CHECK(m.out["code"] == 7);
  CHECK(m.out["msg"].get<std::string>().find("annotation strait.io/ipv6pools: \"v6\"") !=
        std::string::npos);
  // No pool for this namespace at all: code 100 before the store is opened.
  json only_sys = conf;
  for (auto& p : only_sys["ipam"]["pools"]) p["namespaceSelector"] = "kube-*";
  Out none = run("ADD", only_sys, "c1", "eth0", "K8S_POD_NAMESPACE=default");
  CHECK(none.out["code"] == 100);
  CHECK(none.out["msg"] ==
        "no pool selects node node-a and namespace \"default\" (nodeSelector, namespaceSelector)");
  CHECK_FALSE(fs::exists(d.path() + "/store"));
  CHECK_FALSE(fs::exists(d.path() + "/store-locks"));
}
