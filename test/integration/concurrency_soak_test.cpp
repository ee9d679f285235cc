#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"
#include "test/support/sriov_world.h"

// 200 ADD/DEL cycles from 16 parallel workers of the real binaries in one host netns, on a
// range of 20 addresses so addresses are reused all the time. An address is "live" from the
// moment ADD returns it until just before its DEL starts; no address may ever be live twice.
// At the end: no lease, no index entry, no link in any pod netns, the host unchanged.
//
// global-ipam (file store): a /27 pool (29 usable addresses) cut into eight /30 blocks, and
// the workers split between two node names, so both nodes claim blocks concurrently from one
// pool (compare-and-swap between nodes; the node lock only serializes one node), addresses
// are reused inside them, and a node whose blocks are full claims another or borrows. At the
// end: no allocation in any block, no handle record, `global-ipam check` finds nothing wrong,
// and each node owns a block.
//
// A new plugin or IPAM joins with one kCombos row (kVmCombos: one that needs the VM's kernel).
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

constexpr int kWorkers = 16;
constexpr int kCycles = 200;

struct Combo {
  std::string plugin;  // the executable run
  std::string ipam;    // the delegate
  int workers = kWorkers;
  int cycles = kCycles;
};

const std::vector<Combo> kCombos = {
    {"macvlan", "host-local"}, {"macvlan", "global-ipam"}, {"vxlan", "global-ipam"}};

// The rows that need a kernel this machine lacks, run by their plugin's VM suite in its one boot
// (test/vm/CMakeLists.txt): fewer cycles, as each exec costs tens of milliseconds under TCG.
// ipip's tunl0 is there before the first ADD (the ipip module makes it in every netns); the
// first ADDs race for its tunnel address and the node record.
const std::vector<Combo> kVmCombos = {{"ipip", "global-ipam", 4, 10}};

const std::vector<std::string> kGlobalNodes = {"soak-node-a", "soak-node-b"};

// The IPAM block of `ipam`, with its state under `data`; global-ipam for node `node`.
json ipam_conf(const std::string& ipam, const std::string& data, const std::string& node) {
  if (ipam == "global-ipam") {
    return {{"type", "global-ipam"},
            {"nodeName", node},
            {"pools", json::array({{{"name", "soak-v4"},
                                    {"cidr", "192.0.2.0/27"},
                                    {"blockSize", 30},
                                    {"gateway", "192.0.2.1"}}})},
            {"store", {{"type", "file"}, {"path", data + "/store"}}},
            {"nodeLockDir", data + "/locks"}};
  }
  json range = {{"subnet", "192.0.2.0/24"},
                {"rangeStart", "192.0.2.10"},
                {"rangeEnd", "192.0.2.29"},
                {"gateway", "192.0.2.1"}};
  return {{"type", ipam}, {"dataDir", data}, {"ranges", json::array({json::array({range})})}};
}

// host-local: only lock, last_reserved_ip.* and the (empty) index are left.
void check_host_local_leftovers(const fs::path& dir) {
  REQUIRE(fs::exists(dir));
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    INFO("left in the lease directory: " << n);
    CHECK((n == "lock" || n.rfind("last_reserved_ip.", 0) == 0 || n == ".strait"));
  }
  if (fs::exists(dir / ".strait")) {
    for (const auto& e : fs::directory_iterator(dir / ".strait")) {
      std::string n = e.path().filename().string();
      INFO("left in the index: " << n);
      CHECK(n == "stamp");
    }
  }
}

// global-ipam: the store's blocks hold no allocation and no handle record is left (read from
// the files, "<revision>\n<JSON>", layout in ipam/global/records.h); `global-ipam check`
// agrees and finds nothing else wrong; each node owns a block. An overlay's tunnel addresses
// (handles "<kind>-tunnel-addr/<node>/<device>", node state) are the only allocations kept:
// `tunnels` of them. Returns "<node>: <blocks>".
std::string check_global_leftovers(const fs::path& store, const std::vector<std::string>& nodes,
                                   int tunnels) {
  REQUIRE(fs::exists(store / "blocks"));
  std::map<std::string, int> owned;
  for (const auto& e : fs::recursive_directory_iterator(store / "blocks")) {
    if (!e.is_regular_file()) continue;
    std::string text = read_file(e.path());
    size_t nl = text.find('\n');
    REQUIRE(nl != std::string::npos);
    json block = json::parse(text.substr(nl + 1));
    INFO("block " << e.path().filename() << ": " << block.dump());
    for (const auto& a : block.at("allocations")) {
      CHECK(a.at("handle").get<std::string>().find("-tunnel-addr/") != std::string::npos);
    }
    owned[block.value("affinity", "")]++;
  }
  if (fs::exists(store / "handles")) {
    for (const auto& e : fs::recursive_directory_iterator(store / "handles")) {
      INFO("left in handles/: " << fs::relative(e.path(), store));
      CHECK((!e.is_regular_file() ||
             fs::relative(e.path(), store).string().find("-tunnel-addr/") != std::string::npos));
    }
  }
  std::string out;
  strait::test::sh(bin("global-ipam") + " --store-path " + store.string() + " --json check", &out);
  INFO("global-ipam check: " << out);
  json report;
  REQUIRE_NOTHROW(report = json::parse(out));
  CHECK(report.at("problems") == json::array());
  CHECK(report.at("summary").at("allocations") == tunnels);
  CHECK(report.at("summary").at("handles") == tunnels);
  std::string summary;
  for (const auto& node : nodes) {
    INFO("blocks owned by " << node);
    CHECK(owned[node] >= 1);
    summary += (summary.empty() ? "" : ", ") + node + ": " + std::to_string(owned[node]);
  }
  return summary + " blocks of 8";
}

}  // namespace

namespace {

// The routes of the host netns to addresses of the pools (192.0.2.0/24) but the blackholes an
// overlay keeps for its blocks: a DEL that left a pod's route behind.
std::vector<std::string> pod_routes(const TempNetns& host) {
  std::vector<std::string> out;
  std::istringstream in(sh_ok("ip -n " + host.name() + " -4 route show"));
  for (std::string line; std::getline(in, line);) {
    if (line.find("192.0.2.") != std::string::npos && line.rfind("blackhole ", 0) != 0) {
      out.push_back(line);
    }
  }
  return out;
}

// One row: combo.cycles ADD/DEL cycles from combo.workers workers.
void soak(const Combo& combo) {
  INFO(combo.plugin << " + " << combo.ipam);
  TempNetns host{"soh"};
  sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0");
  sh_ok("ip -n " + host.name() + " link set mst0 up");
  const bool overlay = combo.plugin == "vxlan" || combo.plugin == "ipip";
  // An overlay: mst0 is the underlay; vxlan's device is node state, made by the first ADD.
  if (overlay) sh_ok("ip -n " + host.name() + " addr add 198.51.100.1/24 dev mst0");
  const std::set<std::string> host_links = host.links();
  TempDir data{"strait-soak"};
  const std::string network = unique_name("sonet", 40);
  const bool global = combo.ipam == "global-ipam";
  // One config per node name (global-ipam: workers alternate between two nodes; an overlay
  // has one node per host netns, whose first ADDs race for the node state).
  const std::vector<std::string> nodes =
      overlay ? std::vector<std::string>{kGlobalNodes[0]} : kGlobalNodes;
  std::vector<std::string> inputs;
  for (const auto& node : global ? nodes : std::vector<std::string>{""}) {
    json conf = {{"cniVersion", "1.1.0"},
                 {"name", network},
                 {"type", combo.plugin},
                 {"master", "mst0"},
                 {"ipam", ipam_conf(combo.ipam, data.path(), node)}};
    if (overlay) {
      conf.erase("master");
      conf["underlayInterface"] = "mst0";
    }
    inputs.push_back(conf.dump());
  }

  std::vector<std::unique_ptr<TempNetns>> pods;
  for (int i = 0; i < combo.workers; ++i) pods.push_back(std::make_unique<TempNetns>("sop"));

  std::mutex mu;
  std::set<std::string> live;
  std::vector<std::string> failures;
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  auto fail = [&](std::string what) {
    std::lock_guard lock(mu);
    failures.push_back(std::move(what));
  };

  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < combo.workers; ++w) {
    workers.emplace_back([&, w] {
      const std::string netns = pods[w]->path();
      const std::string& input = inputs[w % inputs.size()];
      while (next.fetch_add(1) < combo.cycles) {
        const std::string cid = unique_name("soak", 40);
        PluginRun add = run_plugin(bin(combo.plugin), plugin_env("ADD", cid, netns, "net1"), input,
                                   host.name());
        if (add.exit_code != 0) {
          fail("ADD " + cid + " failed: " + add.out + add.err);
          continue;
        }
        std::string addr;
        try {
          addr = add.json().at("ips").at(0).at("address").get<std::string>();
        } catch (const std::exception& e) {
          // Reported as what it is: no "" enters the live set, where the next such ADD would
          // have been reported as a duplicate. Its attachment is still deleted.
          fail("ADD " + cid + " printed no address: " + add.out);
        }
        if (addr.empty()) {
          run_plugin(bin(combo.plugin), plugin_env("DEL", cid, netns, "net1"), input, host.name());
          continue;
        }
        {
          std::lock_guard lock(mu);
          if (!live.insert(addr).second) failures.push_back(addr + " handed out twice");
        }
        // While it is live, the address is on the pod's interface (and the window is wide
        // enough for a second ADD to hand it out again if the allocator were wrong).
        std::string shown;
        strait::test::sh("ip -n " + pods[w]->name() + " -o addr show dev net1", &shown);
        if (shown.find(" " + addr + " ") == std::string::npos) {
          fail("pod of " + cid + " does not have " + addr + ": " + shown);
        }
        {
          std::lock_guard lock(mu);
          live.erase(addr);
        }
        PluginRun del = run_plugin(bin(combo.plugin), plugin_env("DEL", cid, netns, "net1"), input,
                                   host.name());
        if (del.exit_code != 0) fail("DEL " + cid + " failed: " + del.out + del.err);
        ++done;
      }
    });
  }
  for (auto& t : workers) t.join();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN(combo.plugin << " + " << combo.ipam << ": " << done.load() << " cycles in " << secs << " s");

  for (const auto& f : failures) FAIL_CHECK(f);
  CHECK(failures.empty());
  CHECK(done.load() == combo.cycles);
  CHECK(live.empty());
  // Nothing left of any attachment.
  if (global) {
    WARN(combo.plugin << " + " << combo.ipam << ": "
                      << check_global_leftovers(fs::path(data.path()) / "store", nodes,
                                                overlay ? 1 : 0));
  } else {
    check_host_local_leftovers(fs::path(data.path()) / network);
  }
  const std::set<std::string> bare = strait::test::new_netns_links();
  for (const auto& p : pods) CHECK(p->links() == bare);
  std::set<std::string> links = host.links();
  if (combo.plugin == "vxlan") CHECK(links.erase("strait.vxlan") == 1);
  CHECK(links == host_links);
  CHECK(pod_routes(host) == std::vector<std::string>{});
}

}  // namespace

TEST_CASE("concurrency soak: 200 ADD/DEL cycles from 16 workers, no duplicate, no leftover",
          "[soak]") {
  for (const Combo& combo : kCombos) soak(combo);
}

// In the VM suite of the plugin (a kernel with ipip): hidden from the main phase.
TEST_CASE("concurrency soak in the VM: ipip, ADD/DEL cycles from 4 workers, no leftover",
          "[.vm][ipip]") {
  for (const Combo& combo : kVmCombos) soak(combo);
}

// sriov (the fake-PF fixture, test/support/sriov_world.h): the 16 workers race for 4 VFs, four
// workers to a VF, each ADD setting every VF setting (its own VLAN). An ADD either gets the VF
// (and no other pod holds it then) or is refused with code 11 because a live pod holds it; a
// DEL returns it. At the end every VF is exactly as before, no record, no lease, no link.
TEST_CASE("concurrency soak: sriov, 16 workers racing for 4 VFs, one holder at a time", "[soak]") {
  using strait::test::SriovNode;
  SriovNode node;
  std::vector<SriovNode::VfState> before;
  for (int vf = 0; vf < 4; ++vf) before.push_back(node.vf_state(vf));
  std::vector<std::unique_ptr<TempNetns>> pods;
  for (int i = 0; i < kWorkers; ++i) pods.push_back(std::make_unique<TempNetns>("ssp"));

  std::mutex mu;
  std::map<int, std::string> holder;  // VF -> container holding it
  std::vector<std::string> failures;
  std::atomic<int> next{0};
  std::atomic<int> held{0};
  std::atomic<int> refused{0};
  auto fail = [&](std::string what) {
    std::lock_guard lock(mu);
    failures.push_back(std::move(what));
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      const int vf = w % 4;
      const json conf = node.conf(vf, {{"vlan", 100 + w},
                                       {"vlanQoS", 1},
                                       {"spoofchk", "off"},
                                       {"trust", "on"},
                                       {"link_state", "enable"},
                                       {"max_tx_rate", 1000}});
      while (next.fetch_add(1) < kCycles) {
        const std::string cid = unique_name("svsoak", 40);
        PluginRun add = node.run("ADD", pods[w]->path(), cid, "net1", conf);
        if (add.exit_code != 0) {
          if (add.out.find("\"code\": 11") == std::string::npos) {
            fail("ADD " + cid + " failed: " + add.out + add.err);
          }
          ++refused;
          continue;
        }
        {
          std::lock_guard lock(mu);
          if (!holder.emplace(vf, cid).second) {
            failures.push_back("VF " + std::to_string(vf) + " given to " + cid + " while " +
                               holder[vf] + " holds it");
          }
        }
        ++held;
        std::string shown;
        strait::test::sh("ip -n " + pods[w]->name() + " -o link show dev net1", &shown);
        if (shown.find("net1") == std::string::npos) fail("pod of " + cid + " has no net1");
        {
          std::lock_guard lock(mu);
          if (holder[vf] == cid) holder.erase(vf);
        }
        PluginRun del = node.run("DEL", pods[w]->path(), cid, "net1", conf);
        if (del.exit_code != 0) fail("DEL " + cid + " failed: " + del.out + del.err);
      }
    });
  }
  for (auto& t : workers) t.join();
  WARN("sriov: " << held.load() << " ADDs got their VF, " << refused.load()
                 << " were refused (VF held)");
  for (const auto& f : failures) FAIL_CHECK(f);
  CHECK(failures.empty());
  CHECK(held.load() + refused.load() == kCycles);
  CHECK(held.load() > 0);
  for (int vf = 0; vf < 4; ++vf) {
    INFO("VF " << vf << " before: " << strait::test::describe(before[vf])
               << "\nnow: " << strait::test::describe(node.vf_state(vf)));
    CHECK(node.vf_state(vf) == before[vf]);
  }
  CHECK(node.state_files().empty());
  CHECK(node.leases().empty());
  for (const auto& p : pods) CHECK(p->links() == std::set<std::string>{"lo"});
}

// bandwidth: 200 ADD/DEL cycles from 16 workers on 16 pods of one host netns, half of them veth
// pods (shaped on the host end, ifb in the host netns), half veths whose peer is in a netns of
// their own (shaped inside the pod, ifb there). While an attachment is live its ifb exists,
// names it in its alias and belongs to no other live attachment; at the end no ifb, qdisc or
// filter is left anywhere.
TEST_CASE("concurrency soak: 200 bandwidth ADD/DEL cycles from 16 workers, no leftover", "[soak]") {
  TempNetns host{"sbh"};
  TempNetns wire{"sbw"};
  const std::string network = unique_name("sbnet", 40);
  std::vector<std::unique_ptr<TempNetns>> pods;
  std::vector<std::string> host_ends;
  for (int i = 0; i < kWorkers; ++i) {
    pods.push_back(std::make_unique<TempNetns>("sbp"));
    const bool on_host = i % 2 == 0;
    const std::string end = unique_name(on_host ? "sbv" : "sbx");
    sh_ok("ip -n " + pods.back()->name() + " link add net1 type veth peer name " + end + " netns " +
          (on_host ? host.name() : wire.name()));
    sh_ok("ip -n " + pods.back()->name() + " link set net1 up && ip -n " +
          (on_host ? host.name() : wire.name()) + " link set " + end + " up");
    host_ends.push_back(on_host ? end : "");
  }
  const std::set<std::string> host_links = host.links();
  auto ifb_alias_of = [](const TempNetns& ns, const std::string& name) {
    std::string out;
    if (strait::test::sh("ip -n " + ns.name() + " -d link show " + name, &out) != 0) return out;
    const size_t a = out.find("alias ");
    return a == std::string::npos ? std::string() : out.substr(a + 6, out.find('\n', a) - a - 6);
  };

  // The live ifbs ("<netns>/<ifb>") and what went wrong, shared by the workers.
  struct Ledger {
    std::mutex mu;
    std::set<std::string> live;
    std::vector<std::string> failures;
    void fail(std::string what) {
      std::lock_guard lock(mu);
      failures.push_back(std::move(what));
    }
    void claim(const std::string& key) {
      std::lock_guard lock(mu);
      if (!live.insert(key).second) failures.push_back(key + " used by two attachments");
    }
    void release(const std::string& key) {
      std::lock_guard lock(mu);
      live.erase(key);
    }
  } ledger;
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  auto fail = [&ledger](std::string what) { ledger.fail(std::move(what)); };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      const TempNetns& pod = *pods[w];
      const bool on_host = !host_ends[w].empty();
      json prev = {{"cniVersion", "1.1.0"},
                   {"interfaces", json::array({{{"name", "net1"}, {"sandbox", pod.path()}}})},
                   {"ips", json::array()}};
      while (next.fetch_add(1) < kCycles) {
        const std::string cid = unique_name("soak", 40);
        const json conf = {{"cniVersion", "1.1.0"}, {"name", network},
                           {"type", "bandwidth"},   {"ingressRate", 8000000},
                           {"ingressBurst", 80000}, {"egressRate", 8000000},
                           {"egressBurst", 80000},  {"prevResult", prev}};
        PluginRun add = run_plugin(bin("bandwidth"), plugin_env("ADD", cid, pod.path(), "net1"),
                                   conf.dump(), host.name());
        if (add.exit_code != 0) {
          fail("ADD " + cid + " failed: " + add.out + add.err);
          continue;
        }
        std::string ifb;
        try {
          ifb = add.json().at("interfaces").back().at("name").get<std::string>();
        } catch (const std::exception&) {
          fail("ADD " + cid + " printed no ifb: " + add.out);
        }
        const TempNetns& where = on_host ? host : pod;
        const std::string key = where.name() + "/" + ifb;
        ledger.claim(key);
        const std::string alias = ifb_alias_of(where, ifb);
        if (alias != "strait-bandwidth " + network + " " + cid + " net1") {
          fail("ifb " + key + " of " + cid + " has alias \"" + alias + "\"");
        }
        ledger.release(key);
        PluginRun del = run_plugin(bin("bandwidth"), plugin_env("DEL", cid, pod.path(), "net1"),
                                   conf.dump(), host.name());
        if (del.exit_code != 0) fail("DEL " + cid + " failed: " + del.out + del.err);
        ++done;
      }
    });
  }
  for (auto& t : workers) t.join();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("bandwidth: " << done.load() << " cycles in " << secs << " s");

  for (const auto& f : ledger.failures) FAIL_CHECK(f);
  CHECK(ledger.failures.empty());
  CHECK(ledger.live.empty());
  CHECK(done.load() == kCycles);
  CHECK(host.links() == host_links);
  CHECK(sh_ok("tc -n " + host.name() + " qdisc show").find("tbf") == std::string::npos);
  CHECK(sh_ok("tc -n " + host.name() + " qdisc show").find("ingress") == std::string::npos);
  for (const auto& p : pods) {
    CHECK(p->links() == std::set<std::string>{"lo", "net1"});
    CHECK(sh_ok("tc -n " + p->name() + " qdisc show dev net1").find("noqueue") !=
          std::string::npos);
    CHECK(sh_ok("tc -n " + p->name() + " qdisc show").find("tbf") == std::string::npos);
  }
}
