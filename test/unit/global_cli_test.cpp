#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/block_allocator.h"
#include "ipam/global/config.h"
#include "ipam/global/file_store.h"
#include "ipam/global/records.h"
#include "plugins/global-ipam/cli.h"
#include "test/support/temp_dir.h"

namespace fs = std::filesystem;
using ipam::records::Handle;
using nlohmann::json;

namespace {

using Dir = strait::unit::TmpDir;

struct Run {
  int rc;
  std::string out;
  std::string err;
  json j() const { return json::parse(out); }
};

// A file store with two nodes' allocations, and the CLI run against it.
struct World {
  World() {
    conf_file = dir.path() + "/net.conflist";
    json list = {{"cniVersion", "1.1.0"},
                 {"name", "net1"},
                 {"plugins",
                  {{{"type", "macvlan"},
                    {"ipam",
                     {{"type", "global-ipam"},
                      {"pools",
                       {{{"name", "p"},
                         {"cidr", "10.50.0.0/24"},
                         {"blockSize", 28},
                         {"gateway", "10.50.0.1"}}}},
                      {"store", {{"path", dir.path() + "/store"}}}}}}}}};
    std::ofstream(conf_file) << list.dump();
    cfg = ipam::parse_global_ipam(list["plugins"][0]["ipam"], "ipam", {{"K8S_NODE_NAME", "x"}});
    store = std::make_unique<ipam::FileStore>(dir.path() + "/store", std::chrono::seconds(5));
  }
  ipam::Assignment add(const std::string& node, const std::string& id) {
    ipam::AllocatorOptions o;
    o.node = node;
    ipam::BlockAllocator a(cfg.pools, *store, o);
    auto got = a.assign(Handle{"net1", id, "eth0"}, {});
    REQUIRE(got.size() == 1);
    return got[0];
  }
  Run cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", conf_file});
    std::ostringstream out;
    std::ostringstream err;
    int rc = global_ipam::cli_main(args, {}, out, err);
    return {rc, out.str(), err.str()};
  }
  std::string write(const std::string& name, const json& j) {
    std::string p = dir.path() + "/" + name;
    std::ofstream(p) << j.dump();
    return p;
  }
  Dir dir;
  std::string conf_file;
  ipam::GlobalConfig cfg;
  std::unique_ptr<ipam::FileStore> store;
};

}  // namespace

TEST_CASE("global-ipam CLI show", "[global-ipam][cli]") {
  World w;
  auto a1 = w.add("n1", "c1");
  w.add("n1", "c2");
  auto b1 = w.add("n2", "c3");
  Run r = w.cli({"show"});
  INFO(r.out << r.err);
  REQUIRE(r.rc == 0);
  // 16 blocks of /28; 253 usable (no network, broadcast, gateway).
  CHECK(r.out ==
        "POOL  CIDR          BLOCKSIZE  BLOCKS  USED  USABLE  BORROWED\n"
        "p     10.50.0.0/24  28         2/16    3     253     0\n");
  Run j = w.cli({"--json", "show", "--blocks"});
  REQUIRE(j.rc == 0);
  json pools = j.j()["pools"];
  REQUIRE(pools.size() == 1);
  CHECK(pools[0]["blocks"] == 2);
  CHECK(pools[0]["totalBlocks"] == 16);
  CHECK(pools[0]["used"] == 3);
  CHECK(pools[0]["usable"] == 253);
  json blocks = j.j()["blocks"];
  REQUIRE(blocks.size() == 2);
  for (const auto& b : blocks) {
    if (b["node"] == "n1") {
      CHECK(b["cidr"] == a1.block.str());
      CHECK(b["used"] == 2);
      CHECK(b["allocations"].size() == 2);
      CHECK(b["allocations"][0]["handle"] == "net1/c1/eth0");
    } else {
      CHECK(b["node"] == "n2");
      CHECK(b["cidr"] == b1.block.str());
      CHECK(b["used"] == 1);
    }
  }
  Run n2 = w.cli({"show", "--blocks", "--node", "n2"});
  REQUIRE(n2.rc == 0);
  CHECK(n2.out.find(b1.block.str()) != std::string::npos);
  CHECK(n2.out.find(a1.block.str()) == std::string::npos);
  CHECK(n2.out.find("1/16") != std::string::npos);  // n2's blocks
}

TEST_CASE("global-ipam CLI nodes and set-node", "[global-ipam][cli]") {
  World w;
  w.add("n1", "c1");
  w.add("n2", "c2");
  Run s =
      w.cli({"set-node", "n1", "--address", "198.51.100.7", "--attr", "vtepMAC=02:aa:00:00:00:01"});
  INFO(s.err);
  REQUIRE(s.rc == 0);
  Run r = w.cli({"nodes"});
  REQUIRE(r.rc == 0);
  CHECK(r.out ==
        "NODE  ADDRESS       BLOCKS  ATTRIBUTES\n"
        "n1    198.51.100.7  1       vtepMAC=02:aa:00:00:00:01\n"
        "n2    -             1       -\n");
  Run j = w.cli({"--json", "nodes"});
  REQUIRE(j.rc == 0);
  CHECK(j.j()[0]["address"] == "198.51.100.7");
  CHECK(j.j()[0]["attributes"]["vtepMAC"] == "02:aa:00:00:00:01");
  CHECK(j.j()[1]["record"] == true);
  // An attribute set to "" goes away; the address stays.
  REQUIRE(w.cli({"set-node", "n1", "--attr", "vtepMAC="}).rc == 0);
  CHECK(w.cli({"--json", "nodes"}).j()[0]["attributes"].empty());
  CHECK(w.cli({"--json", "nodes"}).j()[0]["address"] == "198.51.100.7");
  CHECK(w.cli({"set-node", "n1", "--attr", "novalue"}).rc == 1);
  CHECK(w.cli({"set-node", "n1", "--address", "nope"}).rc == 1);
}

TEST_CASE("global-ipam CLI check finds problems", "[global-ipam][cli]") {
  World w;
  auto a = w.add("n1", "c1");
  w.add("n1", "c2");
  Run clean = w.cli({"check"});
  CHECK(clean.rc == 0);
  CHECK(clean.out == "1 blocks, 2 allocations, 2 handles: no problems\n");

  // A handle record lost: its allocation is an orphan.
  auto rec = w.store->get("handles/net1/c1/eth0");
  REQUIRE(w.store->erase_if(rec->key, rec->revision));
  // A claim that crashed before its block: a dangling index entry.
  REQUIRE(w.store->put_if("affinity/n9/p/10.50.0.240-28", "{}", 0));
  // n1's node record gone: its block has an unknown owner.
  auto node = w.store->get("nodes/n1");
  REQUIRE(w.store->erase_if(node->key, node->revision));
  // A killed ADD's handle intent.
  REQUIRE(w.store->put_if("handles/net1/c9/eth0",
                          R"({"node":"n1","entries":[{"pool":"p","block":")" + a.block.str() +
                              R"(","ip":"10.50.0.99","seq":77}]})",
                          0));

  Run r = w.cli({"--json", "check"});
  INFO(r.out);
  CHECK(r.rc == 1);
  std::map<std::string, std::string> kinds;  // kind -> what
  json report = r.j();
  for (const auto& p : report["problems"]) kinds[p["kind"]] = p["what"];
  CHECK(kinds.at("orphan-allocation") == a.ip.str());
  CHECK(kinds.at("dangling-affinity") == "affinity/n9/p/10.50.0.240-28");
  CHECK(kinds.at("block-owner-unknown") == a.block.str());
  CHECK(kinds.at("empty-handle") == "net1/c9/eth0");
  CHECK(kinds.size() == 4);
  CHECK(report["summary"]["allocations"] == 2);

  // With valid attachments: c2 is not among them.
  std::string valid = w.write(
      "valid.json", {{"cni.dev/valid-attachments", {{{"containerID", "c1"}, {"ifname", "eth0"}}}}});
  Run v = w.cli({"--json", "check", "--valid", valid});
  bool stale_c2 = false;
  json with_valid = v.j();
  for (const auto& p : with_valid["problems"]) {
    if (p["kind"] == "stale-allocation") stale_c2 = p["handle"] == "net1/c2/eth0";
  }
  CHECK(stale_c2);
  Run human = w.cli({"check"});
  CHECK(human.out.find("orphan-allocation") != std::string::npos);
  CHECK(human.out.find("4 problems") != std::string::npos);
}

TEST_CASE("global-ipam CLI check reports malformed keys by name", "[global-ipam][cli]") {
  World w;
  w.add("n1", "c1");
  // Keys that are valid store paths but not keys of their folder: too few components (an
  // offset past a '/' that is not there wrapped around before), or a block that is no CIDR.
  for (const char* key : {"affinity/lonely", "affinity/n1/p/garbage", "pools/q/extra",
                          "blocks/p/not-a-block", "handles/net1/c1x"}) {
    REQUIRE(w.store->put_if(key, "{}", 0));
  }
  Run r = w.cli({"--json", "check"});
  INFO(r.out << r.err);
  CHECK(r.rc == 1);
  std::set<std::string> malformed;
  json report = r.j();
  for (const auto& p : report["problems"]) {
    CHECK(p["kind"] == "malformed-key");
    malformed.insert(p["what"].get<std::string>());
  }
  CHECK(malformed == std::set<std::string>{"affinity/lonely", "affinity/n1/p/garbage",
                                           "blocks/p/not-a-block", "handles/net1/c1x",
                                           "pools/q/extra"});
  // The other commands read past them.
  CHECK(w.cli({"show", "--blocks"}).rc == 0);
  std::string valid = w.write("valid.json", json::array());
  Run gc = w.cli({"--json", "gc", "--valid", valid});
  INFO(gc.err);
  CHECK(gc.rc == 0);
  CHECK(gc.j()["released"].size() == 1);  // c1, and nothing read from the malformed keys
  // And so does the allocator (the pool overlap check lists pools/).
  CHECK(w.add("n2", "c2").ip.is_v4());
}

TEST_CASE("global-ipam CLI release and gc", "[global-ipam][cli]") {
  World w;
  auto a1 = w.add("n1", "c1");
  w.add("n1", "c2");
  w.add("n2", "c3");
  w.add("n2", "c4");

  Run bad = w.cli({"release", "--handle", "nope"});
  CHECK(bad.rc == 1);
  CHECK(bad.err == "global-ipam: --handle \"nope\" is not NETWORK/CONTAINERID/IFNAME\n");
  Run rel = w.cli({"release", "--handle", "net1/c1/eth0"});
  REQUIRE(rel.rc == 0);
  CHECK(rel.out == "released " + a1.ip.str() + " of net1/c1/eth0\n");
  CHECK(w.cli({"release", "--handle", "net1/c1/eth0"}).out == "nothing held by net1/c1/eth0\n");

  std::string valid =
      w.write("valid.json", json::array({{{"containerID", "c3"}, {"ifname", "eth0"}}}));
  Run dry = w.cli({"--json", "gc", "--valid", valid, "--dry-run"});
  REQUIRE(dry.rc == 0);
  CHECK(dry.j()["released"].size() == 2);  // c2 and c4
  CHECK(w.cli({"check"}).out == "2 blocks, 3 allocations, 3 handles: no problems\n");
  Run n2 = w.cli({"--json", "gc", "--valid", valid, "--node", "n2"});
  REQUIRE(n2.j()["released"].size() == 1);
  CHECK(n2.j()["released"][0]["handle"] == "net1/c4/eth0");
  Run other_net = w.cli({"gc", "--valid", valid, "--network", "net2"});
  CHECK(other_net.out == "nothing to release\n");
  Run all = w.cli({"gc", "--valid", valid});
  CHECK(all.out.find("released ") == 0);
  CHECK(all.out.find("net1/c2/eth0") != std::string::npos);
  Run left = w.cli({"--json", "show"});
  CHECK(left.j()["pools"][0]["used"] == 1);  // c3
  CHECK(w.cli({"gc"}).rc == 1);              // --valid is required
}

TEST_CASE("global-ipam CLI gc is the allocator's collector: it goes on past a broken record",
          "[global-ipam][cli]") {
  World w;
  w.add("n1", "c1");
  w.add("n2", "c2");
  REQUIRE(w.store->put_if("handles/net1/c0/eth0", "not json", 0));
  std::string valid = w.write("valid.json", json::array());
  Run gc = w.cli({"--json", "gc", "--valid", valid});
  // Both good handles are released; the broken one is reported and makes the status 1.
  CHECK(gc.rc == 1);
  CHECK(gc.j()["released"].size() == 2);
  REQUIRE(gc.j()["errors"].size() == 1);
  CHECK(gc.j()["errors"][0].get<std::string>().find("handles/net1/c0/eth0") == 0);
  CHECK(gc.err.find("global-ipam: gc: handles/net1/c0/eth0: ") == 0);
  CHECK(w.cli({"--json", "show"}).j()["pools"][0]["used"] == 0);
}

TEST_CASE("global-ipam CLI gc of nodes that are gone: marked on one run, collected on the next",
          "[global-ipam][cli][gc]") {
  World w;
  w.add("n1", "c1");
  w.add("n2", "c2");
  std::string live = w.write("live.json", json::array({"n1"}));
  Run first = w.cli({"--json", "gc", "--live-nodes", live, "--grace", "0"});
  INFO(first.out << first.err);
  REQUIRE(first.rc == 0);
  CHECK(first.j()["suspected"] == json::array({"n2"}));
  CHECK(first.j()["collected"].empty());
  CHECK(w.cli({"--json", "show"}).j()["pools"][0]["used"] == 2);  // nothing released yet
  // The second observation, as `kubectl get nodes -o json` lists them.
  std::string kubectl =
      w.write("nodes.json", {{"kind", "List"}, {"items", {{{"metadata", {{"name", "n1"}}}}}}});
  Run second = w.cli({"--json", "gc", "--live-nodes", kubectl, "--grace", "0"});
  INFO(second.out << second.err);
  REQUIRE(second.rc == 0);
  CHECK(second.j()["collected"] == json::array({"n2"}));
  REQUIRE(second.j()["released"].size() == 1);
  CHECK(second.j()["released"][0]["handle"] == "net1/c2/eth0");
  CHECK(second.j()["blocksReleased"].size() == 1);
  CHECK(w.cli({"--json", "show"}).j()["pools"][0]["used"] == 1);  // c1 of n1
  CHECK(w.cli({"check"}).out == "1 blocks, 1 allocations, 1 handles: no problems\n");

  // --dead-without-record: the nodes without a node record are the dead ones (an ADD writes
  // its node's record; n2's is deleted, as when the node is removed from the cluster).
  World v;
  v.add("n1", "c1");
  v.add("n2", "c2");
  auto n2_record = v.store->get(ipam::records::node_key("n2"));
  REQUIRE(n2_record);
  REQUIRE(v.store->erase_if(n2_record->key, n2_record->revision));
  CHECK(v.cli({"--json", "gc", "--dead-without-record", "--grace", "0"}).j()["suspected"] ==
        json::array({"n2"}));
  Run gone = v.cli({"--json", "gc", "--dead-without-record", "--grace", "0"});
  CHECK(gone.j()["collected"] == json::array({"n2"}));
  CHECK(v.cli({"--json", "show"}).j()["pools"][0]["used"] == 1);
  CHECK(v.cli({"gc", "--live-nodes", live, "--dead-without-record"}).rc != 0);  // one or other
}

TEST_CASE("global-ipam CLI store options", "[global-ipam][cli]") {
  World w;
  w.add("n1", "c1");
  std::ostringstream out;
  std::ostringstream err;
  int rc = global_ipam::cli_main({"--store-path", w.dir.path() + "/store", "show"}, {}, out, err);
  INFO(err.str());
  REQUIRE(rc == 0);
  // Without a config the pool comes from the store's record (no gateway known: 254 usable).
  CHECK(out.str().find("p     10.50.0.0/24  28         1/16    1     254") != std::string::npos);
  std::ostringstream out2;
  CHECK(global_ipam::cli_main({"--config", w.dir.path() + "/missing.json", "show"}, {}, out2,
                              err) == 1);
  std::ostringstream help;
  CHECK(global_ipam::cli_main({"--help"}, {}, help, err) == 0);
  CHECK(help.str().find("show") != std::string::npos);
}
