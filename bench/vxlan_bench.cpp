// vxlan-bench: the vxlan overlay's figures, side by side in one run (`scripts/bench vxlan`):
//  - ADD and DEL through the same client (the fork server in a node netns) for our vxlan on
//    global-ipam (file store) and the reference ptp + host-local (Debian's /usr/lib/cni), the
//    nearest upstream routed-veth plugin, interleaved in a rotating order;
//  - `vxlan sync` at scale: --nodes remote node records holding --blocks blocks in the store,
//    the full pass (from no vxlan device: the device, the peers and every route) and the no-op
//    pass (nothing changed), in process (overlay::Agent::pass, as the agent runs it), with the
//    kernel writes the engine counts, and the parts of the no-op pass timed one by one; with
//    the outgoing NAT table present (natOutgoing, the default) and again without it;
//  - iperf3 TCP from a pod on one node to a pod on another over our vxlan, beside the same
//    pod-to-pod topology made by hand with ip(8) (bench/hand_pod.sh: the same data plane, so
//    the ratio is our plugin's cost), and for context node to node over the hand-made vxlan
//    device and over the underlay itself, interleaved, medians of --reps runs.
// Every device lives in namespaces made here (test/support/overlay_lab.h builds them).
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/doc_section.h"
#include "bench/lab.h"
#include "bench/spawn_client.h"
#include "bench/stats.h"
#include "ipam/global/block.h"
#include "ipam/global/file_store.h"
#include "ipam/global/nodes.h"
#include "ipam/global/records.h"
#include "ipam/global/store_factory.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/process/invoke.h"
#include "overlay/agent.h"
#include "overlay/cluster.h"
#include "overlay/node_record.h"
#include "overlay/reconcile.h"
#include "plugins/vxlan/sync.h"
#include "plugins/vxlan/vxlan_config.h"
#include "test/support/harness.h"
#include "test/support/overlay_lab.h"

namespace strait::bench {
namespace {

using nlohmann::json;
using strait::test::LabPod;
using strait::test::OverlayLab;
using strait::test::OverlayLabOptions;
using strait::test::TempNetns;
using Clock = std::chrono::steady_clock;

struct Options {
  int execs = 100;
  int nodes = 100;
  int blocks = 1000;
  int full = 5;
  int passes = 30;
  int seconds = 5;
  int reps = 3;
  std::string ours_dir;
  std::string base_dir;  // optional: another build of ours (main's), measured in the same rotation
  std::string base_revision = "unknown revision";
  std::string ref_dir = "/usr/lib/cni";
  std::string write_doc;
  std::string revision = "unknown revision";
};

const std::vector<std::string> kPath = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

template <class T>
std::vector<T> rotate(std::vector<T> v, int i) {
  std::rotate(v.begin(), v.begin() + (i % static_cast<int>(v.size())), v.end());
  return v;
}

std::string in_ns(const std::string& ns, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {ip_binary(), "netns", "exec", ns});
  return run_checked(argv);
}

// ---- ADD / DEL ---------------------------------------------------------------------------

struct ExecRows {
  Series add_ours, del_ours, add_ref, del_ref;
  // global-ipam alone with our config, through the same client: the IPAM exec inside ours.
  Series add_ipam, del_ipam;
  // --base: the same plugin from another build.
  Series add_base, del_base;
};

ExecRows execs(const Options& opt, const std::string& work) {
  OverlayLabOptions lo;
  lo.nodes = 1;
  lo.dual_stack = false;  // the reference is single-stack here
  lo.block_size_v4 = 27;
  lo.max_blocks_per_node = 2;
  OverlayLab lab(lo);
  json ours = lab.conf(0).at("plugins").at(0);
  ours["name"] = lab.network();
  ours["cniVersion"] = "1.0.0";
  const json ref = {{"cniVersion", "1.0.0"},
                    {"name", "vxbench-ref"},
                    {"type", "ptp"},
                    {"ipam",
                     {{"type", "host-local"},
                      {"subnet", "10.77.0.0/24"},
                      {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
                      {"dataDir", work + "/ptp-leases"}}}};
  TempNetns pod_ours("vbo"), pod_ref("vbr"), pod_base("vbb");
  SpawnClient spawner(dirname_of_self() + "/strait-bench-spawn", lab.node(0).path());
  struct Contestant {
    std::string key, binary, cni_path, conf, netns;
  };
  std::vector<Contestant> all = {
      {"ours", opt.ours_dir + "/vxlan", opt.ours_dir, ours.dump(), pod_ours.path()},
      {"ref", opt.ref_dir + "/ptp", opt.ref_dir, ref.dump(), pod_ref.path()},
      {"ipam", opt.ours_dir + "/global-ipam", opt.ours_dir, ours.dump(), pod_ours.path()}};
  if (!opt.base_dir.empty()) {
    all.push_back({"base", opt.base_dir + "/vxlan", opt.base_dir, ours.dump(), pod_base.path()});
  }
  auto run = [&](const Contestant& c, const std::string& cmd) {
    std::vector<std::string> env = {"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=vxbench-" + c.key,
                                    "CNI_NETNS=" + c.netns, "CNI_IFNAME=eth0",
                                    "CNI_PATH=" + c.cni_path};
    env.insert(env.end(), kPath.begin(), kPath.end());
    Exec e = spawner.run(c.binary, env, c.conf);
    if (e.stats.exit_code != 0) {
      throw std::runtime_error(c.key + " " + cmd + " failed: " + e.out + e.err);
    }
    return e.ms();
  };
  // The first ADD of ours makes the node side (device, record, block): not what is measured.
  for (const auto& c : all) {
    run(c, "ADD");
    run(c, "DEL");
  }
  ExecRows rows;
  for (int i = 0; i < opt.execs; ++i) {
    if (i % 20 == 0) std::fprintf(stderr, "  exec %d/%d\r", i, opt.execs);
    for (const auto& c : rotate(all, i)) {
      const double add = run(c, "ADD");
      const double del = run(c, "DEL");
      Series& a = c.key == "ours"   ? rows.add_ours
                  : c.key == "ref"  ? rows.add_ref
                  : c.key == "ipam" ? rows.add_ipam
                                    : rows.add_base;
      Series& d = c.key == "ours"   ? rows.del_ours
                  : c.key == "ref"  ? rows.del_ref
                  : c.key == "ipam" ? rows.del_ipam
                                    : rows.del_base;
      a.add({add});
      d.add({del});
    }
  }
  std::fprintf(stderr, "  exec %d/%d\n", opt.execs, opt.execs);
  return rows;
}

// ---- sync at scale -----------------------------------------------------------------------

struct SyncRows {
  Series full, noop;
  int full_writes = 0, noop_writes_max = 0;
  size_t peers = 0, routes = 0;
  // The parts of a no-op pass.
  Series read_store, read_cluster, reconcile_only;
};

// --nodes remote nodes with --blocks blocks between them, written as their own ADDs would
// (each block affine to its node, its first address the node's tunnel address, two pods).
void populate(ipam::KvStore& store, const Options& opt, const std::string& pool_name,
              const cni::IpNet& pool) {
  uint32_t index = 0;
  for (int n = 0; n < opt.nodes; ++n) {
    const std::string name = "bench-node" + std::to_string(n);
    const int mine = opt.blocks / opt.nodes + (n < opt.blocks % opt.nodes ? 1 : 0);
    overlay::OverlayNode node{
        name, cni::IpAddress::parse("192.0.2." + std::to_string(100 + n)), {}, {}, {}};
    for (int b = 0; b < mine;) {
      const cni::IpNet net{pool.ip + static_cast<int64_t>(index++) * 32, 27};
      const std::string key = ipam::records::block_key(pool_name, net);
      if (store.get(key)) continue;  // the local node's
      ipam::Block blk;
      blk.cidr = net;
      blk.pool = pool_name;
      blk.affinity = name;
      for (uint32_t o = 0; o < 3; ++o) blk.assign(o, name + "/bench" + std::to_string(o), name);
      if (!store.put_if(key, blk.to_json().dump(), 0)) throw std::runtime_error("put " + key);
      if (!node.tunnel_v4) node.tunnel_v4 = net.ip;
      ++b;
    }
    node.attributes = {{"vtepMAC", vxlan::vtep_mac(name, vxlan::kDefaultDevice).str()},
                       {"vni", "1"}};
    ipam::nodes::put(store, overlay::to_record(node, vxlan::kDefaultDevice));
  }
}

// `nat`: the pool keeps natOutgoing (its default), so every pass also reads the strait-nat
// table back and the full pass makes it again; otherwise natOutgoing is false and there is none.
SyncRows sync_scale(const Options& opt, bool nat) {
  OverlayLabOptions lo;
  lo.nat_outgoing = nat;
  lo.nodes = 1;
  lo.dual_stack = false;
  lo.block_size_v4 = 27;
  lo.pool_v4 = "10.128.0.0/16";  // 2048 blocks of /27
  OverlayLab lab(lo);
  LabPod pod = lab.add_pod(0);  // the node side: device, record, its block
  {
    ipam::FileStore store(lab.store_path(), std::chrono::seconds(10));
    populate(store, opt, "v4", cni::IpNet::parse(lo.pool_v4));
  }
  SyncRows rows;
  const cni::Netns node = cni::Netns::open(lab.node(0).path());
  cni::NetnsGuard in(node);
  const overlay::SyncSetup setup = vxlan::sync_plugin().setup(
      overlay::load_plugin_config(lab.conflist(0), "vxlan"), cni::EnvMap{});
  auto store = ipam::open_global_store(setup.config->ipam.store);
  std::ostringstream sink;
  cni::Logger log(sink, cni::Logger::Level::kWarning);
  overlay::Agent agent(*setup.config, setup.overhead, setup.make_tunnel, *store, log);
  for (int r = 0; r < opt.full; ++r) {
    run_checked({ip_binary(), "-n", lab.node(0).name(), "link", "del", vxlan::kDefaultDevice});
    // nft from the benchmark (the agent programs the table through libnftables); added first
    // so that the delete succeeds before the first pass made it.
    if (nat) {
      run_checked({ip_binary(), "netns", "exec", lab.node(0).name(), "nft",
                   "add table ip strait-nat; delete table ip strait-nat"});
    }
    const auto t0 = Clock::now();
    const overlay::ReconcileReport rep = agent.pass();
    rows.full.add({ms_since(t0)});
    rows.full_writes = rep.writes.total();
    rows.peers = rep.peers;
    rows.routes = rep.routes;
  }
  for (int r = 0; r < opt.passes; ++r) {
    const auto t0 = Clock::now();
    const overlay::ReconcileReport rep = agent.pass();
    rows.noop.add({ms_since(t0)});
    rows.noop_writes_max = std::max(rows.noop_writes_max, rep.writes.total());
  }
  // The parts: the store read, and the engine alone (its dumps and the comparison).
  cni::NlSocket sock;
  const overlay::Underlay underlay = overlay::resolve_underlay(sock, *setup.config, setup.overhead);
  auto tunnel = setup.make_tunnel(underlay);
  const int index = cni::get_link(sock, vxlan::kDefaultDevice).index;
  std::vector<ipam::KvStore::Read> reads;
  for (const auto& prefix : overlay::cluster_prefixes(setup.config->ipam.pools)) {
    reads.push_back({prefix, true, false});
  }
  for (int r = 0; r < opt.passes; ++r) {
    auto t0 = Clock::now();
    store->read_batch(reads);
    rows.read_store.add({ms_since(t0)});
    t0 = Clock::now();
    const overlay::Cluster cluster = overlay::read_cluster(*store, setup.config->ipam.pools);
    rows.read_cluster.add({ms_since(t0)});
    t0 = Clock::now();
    overlay::reconcile(sock, *tunnel, index, setup.config->ipam.node_name, cluster, log);
    rows.reconcile_only.add({ms_since(t0)});
  }
  (void)pod;
  return rows;
}

// ---- throughput ----------------------------------------------------------------------------

struct Path {
  std::string key, label, from_ns, target;
};

double iperf_gbit(const Path& p, int seconds) {
  cni::ExecResult e = cni::spawn({ip_binary(), "netns", "exec", p.from_ns, "/usr/bin/iperf3", "-c",
                                  p.target, "-p", "5201", "-t", std::to_string(seconds), "-J"},
                                 {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
  json j = json::parse(e.out, nullptr, false);
  if (!j.is_object() || !j.contains("end")) {
    throw std::runtime_error("iperf3 to " + p.target + " failed: " + e.out + e.err);
  }
  return j["end"]["sum_received"]["bits_per_second"].get<double>() / 1e9;
}

// The hand-made reference pod INDEX (0 or 1) of node netns `node` in netns `pod`
// (bench/hand_pod.sh: our pod data plane made with ip(8)), the other pod's /24 via `nexthop`
// through `tunnel`.
void hand_pod(const std::string& node, const std::string& pod, int index, int mtu,
              const std::string& tunnel, const std::string& nexthop) {
  run_checked({"/bin/bash", std::string(STRAIT_BENCH_DIR) + "/hand_pod.sh", node, pod,
               std::to_string(index), std::to_string(mtu), tunnel, nexthop});
}

std::string hand_pod_address(int index) { return "10.98." + std::to_string(index) + ".2"; }

// The MTU of a pod's interface (the one its ADD's result puts in its sandbox), as the kernel
// has it.
int pod_mtu(const LabPod& p) {
  for (const auto& i : p.result.at("interfaces")) {
    if (!i.contains("sandbox")) continue;
    const std::string shown = run_checked(
        {ip_binary(), "-n", p.ns->name(), "-o", "link", "show", i.at("name").get<std::string>()});
    const size_t at = shown.find(" mtu ");
    if (at != std::string::npos) return std::stoi(shown.substr(at + 5));
  }
  throw std::runtime_error("no MTU for the pod's interface of " + p.result.dump());
}

struct IperfServer {
  IperfServer(const std::string& ns, std::string pidfile) : pidfile_(std::move(pidfile)) {
    in_ns(ns, {"/usr/bin/iperf3", "-s", "-D", "-p", "5201", "--pidfile", pidfile_});
  }
  ~IperfServer() {
    std::ifstream f(pidfile_);
    if (int p = 0; f >> p && p > 0) kill(p, SIGTERM);
  }
  std::string pidfile_;
};

std::map<std::string, std::vector<double>> throughput(const Options& opt, const std::string& work,
                                                      std::vector<Path>* paths) {
  OverlayLabOptions lo;
  lo.nodes = 2;
  lo.dual_stack = false;
  lo.block_size_v4 = 27;
  OverlayLab lab(lo);
  LabPod a = lab.add_pod(0);
  LabPod b = lab.add_pod(1);
  lab.sync_all();
  // The hand-made vxlan: the same underlay, another VNI and port, flooding to the other node
  // (for the node-to-node row) and, as ours, a permanent neighbour and FDB entry for the other
  // node's device (for the pod-to-pod row). Its MTU is the kernel's default, underlay - 50, as
  // ours.
  const auto mac = [](int i) { return "02:99:00:00:00:0" + std::to_string(i + 1); };
  const auto vtep = [](int i) { return "10.99.0." + std::to_string(i + 1); };
  for (int i = 0; i < 2; ++i) {
    const std::string ns = lab.node(i).name();
    const std::string other = lab.node_address(1 - i);
    run_checked({ip_binary(), "-n", ns, "link", "add", "hvx0", "address", mac(i), "type", "vxlan",
                 "id", "99", "dstport", "4790", "local", lab.node_address(i), "dev", "eth0",
                 "nolearning"});
    run_checked({ip_binary(), "-n", ns, "addr", "add", vtep(i) + "/24", "dev", "hvx0"});
    run_checked({ip_binary(), "-n", ns, "link", "set", "hvx0", "up"});
    in_ns(ns,
          {"/usr/sbin/bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "hvx0", "dst", other});
    in_ns(ns, {"/usr/sbin/bridge", "fdb", "append", mac(1 - i), "dev", "hvx0", "dst", other});
    run_checked({ip_binary(), "-n", ns, "neigh", "replace", vtep(1 - i), "lladdr", mac(1 - i),
                 "dev", "hvx0", "nud", "permanent"});
  }
  // The hand-made pods: our pod data plane at our pod's MTU, by hand.
  std::vector<std::unique_ptr<TempNetns>> hand_pods;
  for (int i = 0; i < 2; ++i) {
    hand_pods.push_back(std::make_unique<TempNetns>("vbh"));
    hand_pod(lab.node(i).name(), hand_pods[i]->name(), i, pod_mtu(a), "hvx0", vtep(1 - i));
  }
  IperfServer pod_server(b.ns->name(), work + "/iperf-pod.pid");
  IperfServer hand_server(hand_pods[1]->name(), work + "/iperf-hand.pid");
  IperfServer node_server(lab.node(1).name(), work + "/iperf-node.pid");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the daemons' listen
  *paths = {
      {"ours", "pod to pod over our vxlan", a.ns->name(), b.v4},
      {"hand_pod", "pod to pod over a vxlan made by hand (the same data plane)",
       hand_pods[0]->name(), hand_pod_address(1)},
      {"hand", "node to node over a vxlan made by hand", lab.node(0).name(), "10.99.0.2"},
      {"underlay", "node to node over the underlay", lab.node(0).name(), lab.node_address(1)}};
  std::map<std::string, std::vector<double>> out;
  for (const auto& p : *paths) iperf_gbit(p, 1);  // warm-up (ARP, the neighbours)
  for (int r = 0; r < opt.reps; ++r) {
    std::fprintf(stderr, "  iperf3 rep %d/%d\r", r + 1, opt.reps);
    for (const auto& p : rotate(*paths, r)) out[p.key].push_back(iperf_gbit(p, opt.seconds));
  }
  std::fprintf(stderr, "\n");
  return out;
}

// ---- report --------------------------------------------------------------------------------

const char* verdict(bool met) { return met ? "**met**" : "**missed**"; }

std::string report(const Options& opt, const ExecRows& ex, const SyncRows& sy,
                   const SyncRows& plain, const std::map<std::string, std::vector<double>>& bw,
                   const std::vector<Path>& paths, const std::string& header) {
  std::ostringstream o;
  o << header;
  o << "\n### ADD and DEL exec time (" << opt.execs
    << " each, interleaved, through the fork server in a node netns)\n\n"
    << "| operation | ref ptp+host-local p50 ms | ref p99 | ours vxlan+global-ipam p50 ms | "
       "ours p99 | ours/ref p50 |\n|---|--:|--:|--:|--:|--:|\n";
  auto exec_row = [&](const char* op, const Series& ref, const Series& ours) {
    o << "| " << op << " | " << fmt(ref.p50()) << " | " << fmt(ref.p99()) << " | "
      << fmt(ours.p50()) << " | " << fmt(ours.p99()) << " | " << fmt(ours.p50() / ref.p50())
      << "x |\n";
  };
  exec_row("ADD", ex.add_ref, ex.add_ours);
  exec_row("DEL", ex.del_ref, ex.del_ours);
  // The IPAM exec inside ours, measured alone: what the plugin's own work adds to it (ours
  // runs the two side by side, so this is not the plugin's CPU time).
  o << "\nglobal-ipam alone, exec'd with our config through the same client (the IPAM exec "
       "inside ours ADD and DEL): ADD p50 "
    << fmt(ex.add_ipam.p50()) << " ms (p99 " << fmt(ex.add_ipam.p99()) << "), DEL p50 "
    << fmt(ex.del_ipam.p50()) << " ms (p99 " << fmt(ex.del_ipam.p99())
    << "); ours ADD p50 minus it: " << fmt(ex.add_ours.p50() - ex.add_ipam.p50()) << " ms.\n";
  if (!ex.add_base.empty()) {
    o << "\nThe same rotation also ran the vxlan of another build (--base, " << opt.base_revision
      << "): ADD p50 " << fmt(ex.add_base.p50()) << " ms (p99 " << fmt(ex.add_base.p99()) << ", "
      << fmt(ex.add_base.p50() / ex.add_ref.p50()) << "x the reference), DEL p50 "
      << fmt(ex.del_base.p50()) << " ms (p99 " << fmt(ex.del_base.p99()) << ", "
      << fmt(ex.del_base.p50() / ex.del_ref.p50()) << "x).\n";
  }

  o << "\n### `vxlan sync` with " << opt.nodes << " remote nodes holding " << opt.blocks
    << " blocks (file store), in process\n\n"
    << "| pass | runs | p50 ms | max ms | kernel writes | peers | routes |\n"
    << "|---|--:|--:|--:|--:|--:|--:|\n"
    << "| full (no device, no NAT table: the device, every peer and route, the table) | "
    << sy.full.size() << " | " << fmt(sy.full.p50()) << " | " << fmt(sy.full.time_quantile(1.0))
    << " | " << sy.full_writes << " | " << sy.peers << " | " << sy.routes << " |\n"
    << "| no-op (nothing changed, the NAT table present and read back) | " << sy.noop.size()
    << " | " << fmt(sy.noop.p50()) << " | " << fmt(sy.noop.time_quantile(1.0)) << " | "
    << sy.noop_writes_max << " (max) | " << sy.peers << " | " << sy.routes << " |\n"
    << "| full, natOutgoing false (no NAT table) | " << plain.full.size() << " | "
    << fmt(plain.full.p50()) << " | " << fmt(plain.full.time_quantile(1.0)) << " | "
    << plain.full_writes << " | " << plain.peers << " | " << plain.routes << " |\n"
    << "| no-op, natOutgoing false (no NAT table) | " << plain.noop.size() << " | "
    << fmt(plain.noop.p50()) << " | " << fmt(plain.noop.time_quantile(1.0)) << " | "
    << plain.noop_writes_max << " (max) | " << plain.peers << " | " << plain.routes << " |\n"
    << "| part: the store's listings alone (file reads) | " << sy.read_store.size() << " | "
    << fmt(sy.read_store.p50()) << " | " << fmt(sy.read_store.time_quantile(1.0)) << " | - | | |\n"
    << "| part: read_cluster with nothing remembered (the listings, decoding all) | "
    << sy.read_cluster.size() << " | " << fmt(sy.read_cluster.p50()) << " | "
    << fmt(sy.read_cluster.time_quantile(1.0)) << " | - | | |\n"
    << "| part: reconcile (route, neighbour, FDB dumps and the comparison) | "
    << sy.reconcile_only.size() << " | " << fmt(sy.reconcile_only.p50()) << " | "
    << fmt(sy.reconcile_only.time_quantile(1.0)) << " | - | | |\n";

  o << "\n### iperf3 TCP, " << opt.seconds << " s runs, medians of " << opt.reps
    << " (interleaved)\n\nThe reference is the same pod-to-pod topology made by hand with ip(8) "
       "(bench/hand_pod.sh: veth pairs at our pod MTU, /32 routes, proxy ARP for the link-local "
       "gateway, the other pod's /24 via the other node's device onlink over a vxlan device made "
       "by hand between the same node netns); node to node over that device and over the "
       "underlay are for context.\n\n"
    << "| path | Gbit/s | runs | of the hand-made pod to pod | of the hand-made node to node | "
       "of the underlay |\n|---|--:|--:|--:|--:|--:|\n";
  auto med = [&](const std::string& k) {
    auto it = bw.find(k);
    return it == bw.end() ? NAN : quantile(it->second, 0.5);
  };
  for (const auto& p : paths) {
    std::string runs;
    if (auto it = bw.find(p.key); it != bw.end()) {
      for (double g : it->second) runs += (runs.empty() ? "" : " ") + fmt(g);
    }
    o << "| " << p.label << " | " << fmt(med(p.key)) << " | " << runs << " | "
      << fmt(med(p.key) / med("hand_pod")) << "x | " << fmt(med(p.key) / med("hand")) << "x | "
      << fmt(med(p.key) / med("underlay")) << "x |\n";
  }

  const double add_ratio = ex.add_ours.p50() / ex.add_ref.p50();
  const double bw_ratio = med("ours") / med("hand_pod");
  o << "\n### Targets\n\n| target | figure | |\n|---|--:|---|\n"
    << "| ADD p50 ours <= 0.5x ptp+host-local | " << fmt(add_ratio) << "x | "
    << verdict(add_ratio <= 0.5) << " |\n"
    << "| full pass <= 250 ms | " << fmt(sy.full.p50()) << " ms | " << verdict(sy.full.p50() <= 250)
    << " |\n"
    << "| no-op pass <= 25 ms | " << fmt(sy.noop.p50()) << " ms | " << verdict(sy.noop.p50() <= 25)
    << " |\n"
    << "| no-op pass: zero kernel writes (nftables included) | " << sy.noop_writes_max << " | "
    << verdict(sy.noop_writes_max == 0) << " |\n"
    << "| pod-to-pod >= 0.97x the same pod-to-pod made by hand | " << fmt(bw_ratio) << "x | "
    << verdict(bw_ratio >= 0.97) << " |\n";
  return o.str();
}

constexpr const char* kBegin = "<!-- vxlan-bench: begin (scripts/bench vxlan --write-doc) -->";
constexpr const char* kEnd = "<!-- vxlan-bench: end -->";

int run(int argc, char** argv) {
  Options opt;
  opt.ours_dir = (std::filesystem::path(dirname_of_self()) / ".." / "bin").lexically_normal();
  CLI::App app{"vxlan-bench: the vxlan overlay beside the reference, the agent at scale, iperf3"};
  app.add_option("--execs", opt.execs, "ADD/DEL pairs per contestant")->check(CLI::PositiveNumber);
  app.add_option("--nodes", opt.nodes, "remote nodes for the sync rows")->check(CLI::Range(1, 150));
  app.add_option("--blocks", opt.blocks, "their blocks")->check(CLI::Range(1, 2000));
  app.add_option("--full", opt.full, "full passes")->check(CLI::PositiveNumber);
  app.add_option("--passes", opt.passes, "no-op passes")->check(CLI::PositiveNumber);
  app.add_option("--seconds", opt.seconds, "iperf3 seconds per run")->check(CLI::Range(1, 60));
  app.add_option("--reps", opt.reps, "iperf3 runs per path")->check(CLI::PositiveNumber);
  app.add_option("--ours", opt.ours_dir, "directory of our plugins");
  app.add_option("--ref", opt.ref_dir, "directory of the reference plugins");
  app.add_option("--base", opt.base_dir,
                 "directory of another build of ours, measured in the same ADD/DEL rotation");
  app.add_option("--base-revision", opt.base_revision, "what --base was built from");
  app.add_option("--write-doc", opt.write_doc, "also write the section into this markdown file");
  app.add_option("--revision", opt.revision, "what ours was built from (git describe)");
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) throw std::runtime_error("vxlan-bench needs root (network namespaces)");
  signal(SIGPIPE, SIG_IGN);

  const std::string load_start = loadavg();
  const std::string date = utc_date();
  utsname u{};
  uname(&u);

  WorkDir work("");
  std::fprintf(stderr, "vxlan-bench: ADD/DEL\n");
  const ExecRows ex = execs(opt, work.path());
  std::fprintf(stderr, "vxlan-bench: sync with %d nodes, %d blocks\n", opt.nodes, opt.blocks);
  const SyncRows sy = sync_scale(opt, true);
  std::fprintf(stderr, "vxlan-bench: sync again with natOutgoing false\n");
  const SyncRows plain = sync_scale(opt, false);
  std::fprintf(stderr, "vxlan-bench: iperf3\n");
  std::vector<Path> paths;
  const auto bw = throughput(opt, work.path(), &paths);
  const std::string load_end = loadavg();

  std::ostringstream h;
  h << "## vxlan (issue 12), " << date << "\n\n"
    << "`scripts/bench vxlan` (bench/vxlan_bench.cpp): ours (" << opt.revision
    << ") beside the reference `" << opt.ref_dir << "/ptp` + `host-local`, kernel " << u.release
    << ", " << sysconf(_SC_NPROCESSORS_ONLN)
    << " CPUs shared with other builds and tests; load average " << load_start << " at the start, "
    << load_end
    << " at the end (absolute times are noise on this machine; the ratios of one run are the "
       "figures).\n";
  const std::string text = report(opt, ex, sy, plain, bw, paths, h.str());
  publish(text, opt.write_doc, kBegin, kEnd);
  return 0;
}

}  // namespace
}  // namespace strait::bench

int main(int argc, char** argv) {
  return strait::bench::guarded_main("vxlan-bench", strait::bench::run, argc, argv);
}
