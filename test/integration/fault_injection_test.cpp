#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/core/ip.h"
#include "libcni/process/invoke.h"
#include "test/support/harness.h"
#include "test/support/sriov_world.h"

// SIGKILL during ADD at deterministic points, without hooks in the product: the executable
// runs under `strace -e inject=<syscall>:signal=KILL:when=<k>`, which kills it on entry to
// its k-th call of that system call (before the call runs). Sweeping k over every call of
// each system call kills it between any two netlink requests, before/after reading each
// ack, around every file operation of the lease store, before the IPAM exec and before the
// result is written. After each kill the runtime does what runtimes do: DEL with the same
// environment (no prevResult: ADD never returned one), then GC with the attachments still
// valid. Then nothing of the killed pod may be left (link in either netns, lease, index
// entry) and an ADD of the same pod must succeed.
//
// Most rows trace the plugin's main thread only (no -f): a running IPAM child is orphaned, as
// when a runtime's timeout kills a plugin, and finishes on its own; we wait for it before DEL.
// The "follow" row (strace -f) counts and kills across every thread and child: macvlan, the
// IPAM child it spawns before it creates the link (cni::EarlyIpamAdd) until its exec, and
// host-local inside that child (a killed host-local makes macvlan's ADD fail and roll back,
// exit 1). With several threads the k-th call is not the
// same call in every run (and strace counts per tracee, see count_calls). A kill point may
// thus fall past the end (the ADD then succeeds; the same happens in a sanitizer build, whose
// runtime makes calls of its own): such a row requires at least 90% of its points to kill.
// Every other row requires every point to kill.
//
// global-ipam (file store): "nothing left" means no allocation in any block and no file of
// the store naming the killed container (its handle record), read from the store's files
// (layout: ipam/global/records.h); and `global-ipam check` finds nothing wrong with the store
// once the retried ADD is deleted again. Its rows run every kill against a new store holding
// only the bystander (added first, so it claims the first block): with blockSize 28 the
// killed ADD takes an address of the node's block (the steady state), with blockSize 32
// (one address per block) it claims a block of its own (pool record, index entry, block).
// The store's .locks/ and .tmp/ hold no state and are not compared: .locks/ holds the shared
// key lock files (kept for good), and a kill before a rename leaves a temporary file (removed
// by the next process that opens the store: its writer is dead).
//
// A new executable joins with one kTargets row; one that needs a kernel this machine lacks
// joins kVmTargets, run by its VM suite.
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::inspect;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::read_file;
using strait::test::run_plugin;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

// The IPAM a config names, and how it is set up.
struct IpamSetup {
  std::string type = "host-local";  // or "global-ipam" (file store)
  int block_size = 28;              // global-ipam: the pool's blockSize
  // global-ipam: each kill starts from a new store holding only the bystander, so that every
  // killed ADD takes the same path (a claim, with blockSize 32).
  bool fresh_store = false;
};

struct FaultTarget {
  std::string executable;
  IpamSetup ipam;
  bool makes_link;      // whether ADD puts a link into the pod netns
  int second_add_code;  // an ADD repeated without DEL; 0: succeeds with the same address
  std::vector<std::string> syscalls;
  bool follow = false;                // strace -f: count and kill in every thread and child
  std::string conf_type = "macvlan";  // the config's "type": the plugin whose keys it has
  // Kill points per system call, spread evenly over its calls from the first to the last; 0:
  // every call. A row run under TCG (kVmTargets) cannot afford every call.
  int points = 0;
};

const std::vector<std::string> kMacvlanSyscalls = {"sendmsg", "recvmsg", "setns", "socket",
                                                   "openat",  "write",   "clone", "clone3",
                                                   "vfork",   "wait4",   "sendto"};
// The file store's writes: lock, create, write, rename into place (a new key) or exchange
// with the old version (renameat2, an existing key; the old version's unlink after it),
// directories made and removed on the way, listings. No fsync: the store makes none on a
// local file system (the test's temp dir; ipam/global/file_store.h, "Durability"), so a kill
// point there would find no call and test nothing.
const std::vector<std::string> kGlobalIpamSyscalls = {
    "openat", "write",    "flock", "rename",  "renameat", "renameat2",
    "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir",    "getdents64"};

const std::vector<FaultTarget> kTargets = {
    {"macvlan", {}, true, 4, kMacvlanSyscalls},
    {"host-local",
     {},
     false,
     102,
     {"openat", "write", "flock", "renameat", "rename", "unlink", "unlinkat", "mkdir", "mkdirat",
      "fsync", "fdatasync", "ftruncate", "close", "utimensat", "linkat", "getdents64"}},
    {"macvlan", {"global-ipam", 28, false}, true, 4, kMacvlanSyscalls},
    // macvlan, the IPAM child it spawns before making the link, and host-local in it.
    {"macvlan",
     {},
     true,
     4,
     {"sendmsg", "setns", "clone", "clone3", "vfork", "execve", "wait4", "openat", "write", "flock",
      "fsync", "renameat", "rename", "ftruncate"},
     true},
    {"global-ipam", {"global-ipam", 28, true}, false, 0, kGlobalIpamSyscalls},
    {"global-ipam", {"global-ipam", 32, true}, false, 0, kGlobalIpamSyscalls},
    // The bystander's ADD makes the node state (device, tunnel address, record); the killed
    // ADDs then run the steady path: node checks, veth, IPAM exec, pod and host config.
    {"vxlan",
     {"global-ipam", 28, false},
     true,
     4,
     {"sendmsg", "recvmsg", "setns", "socket", "openat", "flock", "clone", "clone3", "wait4"},
     false,
     "vxlan"},
};

// The rows that need a kernel this machine lacks: hidden from the main phase (tag [.vm]) and
// run by the VM suite of their plugin in its one boot (test/vm/CMakeLists.txt, "vm: ipip").
// ipip's successful path: the bystander's ADD makes tunl0's tunnel address and the node record;
// the killed ADDs run the steady path (vxlan's shared code with tunl0 for the device), killed
// at two points each of its netlink writes (sendmsg) and its file opens (openat: sysctls, the
// store, the IPAM exec), a third and two thirds of the way through. Each point costs seven
// execs, 10-20 s under TCG on a busy machine: the rows of the main phase kill at every call.
const std::vector<FaultTarget> kVmTargets = {
    {"ipip", {"global-ipam", 28, false}, true, 4, {"sendmsg", "openat"}, false, "ipip", 2},
};

std::string describe(const FaultTarget& t) {
  std::string s = t.executable;
  if (t.executable != t.ipam.type) s += " + " + t.ipam.type;
  if (t.ipam.type == "global-ipam") s += " (blockSize " + std::to_string(t.ipam.block_size) + ")";
  if (t.follow) s += " (strace -f: every thread and child)";
  return s;
}

struct World {
  IpamSetup ipam;
  std::string conf_type;
  TempNetns host{"fih"};
  TempDir data{"strait-fault"};
  std::string network = unique_name("finet", 40);
  int store_generation = 0;

  explicit World(IpamSetup setup = {}, std::string type = "macvlan")
      : ipam(std::move(setup)), conf_type(std::move(type)) {
    sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0");
    sh_ok("ip -n " + host.name() + " link set mst0 up");
    // vxlan's and ipip's underlay.
    if (conf_type == "vxlan" || conf_type == "ipip")
      sh_ok("ip -n " + host.name() + " addr add 198.51.100.1/24 dev mst0");
  }

  bool global() const { return ipam.type == "global-ipam"; }
  // global-ipam: the file store the config names (not made before the first call).
  std::string store_dir() const {
    return data.path() + "/store-" + std::to_string(store_generation);
  }
  // global-ipam: the next calls use a new, empty store.
  void fresh_store() { ++store_generation; }

  json conf() const {
    json ipam_conf;
    if (global()) {
      ipam_conf = {{"type", "global-ipam"},
                   {"nodeName", "fault-node"},
                   {"pools", json::array({{{"name", "fault-v4"},
                                           {"cidr", "192.0.2.0/24"},
                                           {"blockSize", ipam.block_size},
                                           {"gateway", "192.0.2.1"}}})},
                   {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
                   {"store", {{"type", "file"}, {"path", store_dir()}}},
                   {"nodeLockDir", data.path() + "/locks"}};
    } else {
      json range = {{"subnet", "192.0.2.0/24"},
                    {"rangeStart", "192.0.2.10"},
                    {"rangeEnd", "192.0.2.250"},
                    {"gateway", "192.0.2.1"}};
      ipam_conf = {{"type", "host-local"},
                   {"dataDir", data.path()},
                   {"ranges", json::array({json::array({range})})},
                   {"routes", json::array({{{"dst", "0.0.0.0/0"}}})}};
    }
    if (conf_type == "vxlan" || conf_type == "ipip") {
      return {{"cniVersion", "1.1.0"},
              {"name", network},
              {"type", conf_type},
              {"underlayInterface", "mst0"},
              {"ipam", ipam_conf}};
    }
    return {{"cniVersion", "1.1.0"},
            {"name", network},
            {"type", "macvlan"},
            {"master", "mst0"},
            {"ipam", ipam_conf}};
  }

  PluginRun run(const std::string& exe, const std::string& verb, const std::string& netns,
                const std::string& cid, const json& c) const {
    return run_plugin(bin(exe), plugin_env(verb, cid, netns, "net1"), c.dump(), host.name());
  }

  PluginRun gc(const std::string& exe, const std::vector<std::string>& valid_cids) const {
    json c = conf();
    json valid = json::array();
    for (const auto& id : valid_cids) valid.push_back({{"containerID", id}, {"ifname", "net1"}});
    c["cni.dev/valid-attachments"] = valid;
    return run_plugin(bin(exe), plugin_env("GC", "", "", ""), c.dump(), host.name());
  }

  fs::path lease_dir() const { return fs::path(data.path()) / network; }

  // Lease files (named like addresses) and what they hold; global-ipam: every allocation of
  // every block, "<address>=<handle>", but a node's tunnel address (node state of the
  // overlays, not an attachment's).
  std::set<std::string> leases() const {
    std::set<std::string> out;
    if (global()) {
      for (const auto& f : store_files()) {
        if (f.rfind("blocks/", 0) != 0) continue;
        for (const auto& a : block_allocations(fs::path(store_dir()) / f)) {
          if (a.find("-tunnel-addr/") == std::string::npos) out.insert(a);
        }
      }
      return out;
    }
    if (!fs::exists(lease_dir())) return out;
    for (const auto& e : fs::directory_iterator(lease_dir())) {
      std::string n = e.path().filename().string();
      if (n == "lock" || n.rfind("last_reserved_ip", 0) == 0 || n == ".strait") continue;
      out.insert(n + "=" + read_file(e.path()));
    }
    return out;
  }

  // global-ipam: the records of the store (paths relative to it), without the lock files and
  // temporary files (.locks/, .tmp/) that hold no state.
  std::vector<std::string> store_files() const {
    std::vector<std::string> out;
    if (!fs::exists(store_dir())) return out;
    for (const auto& e : fs::recursive_directory_iterator(store_dir())) {
      std::string rel = fs::relative(e.path(), store_dir()).string();
      if (rel.rfind(".locks", 0) == 0 || rel.rfind(".tmp", 0) == 0) continue;
      if (e.is_regular_file()) out.push_back(rel);
    }
    return out;
  }

  // global-ipam: "<address>=<handle>" for each allocation of one block record
  // ("<revision>\n<JSON>", ipam/global/block.h).
  static std::vector<std::string> block_allocations(const fs::path& file) {
    std::string text = read_file(file);
    size_t nl = text.find('\n');
    REQUIRE(nl != std::string::npos);
    json b = json::parse(text.substr(nl + 1));
    auto cidr = cni::IpNet::try_parse(b.at("cidr").get<std::string>());
    REQUIRE(cidr);
    std::vector<std::string> out;
    for (const auto& a : b.at("allocations")) {
      cni::IpAddress ip = cidr->ip + a.at("ordinal").get<int64_t>();
      out.push_back(ip.str() + "=" + a.at("handle").get<std::string>());
    }
    return out;
  }

  // global-ipam: what `global-ipam check` finds wrong with the store (its "problems").
  json store_problems() const {
    std::string out;
    strait::test::sh(bin("global-ipam") + " --store-path " + store_dir() + " --json check", &out);
    INFO("global-ipam check: " << out);
    json j;
    REQUIRE_NOTHROW(j = json::parse(out));
    return j.at("problems");
  }

  // Whether a call made nothing: host-local, no lease directory; global-ipam, no record in
  // the store.
  bool made_nothing() const { return global() ? store_files().empty() : !fs::exists(lease_dir()); }

  // Index entries that mention `cid` (name or content); global-ipam: records of the store
  // that do (its handle record, an allocation).
  std::vector<std::string> index_mentions(const std::string& cid) const {
    std::vector<std::string> out;
    if (global()) {
      for (const auto& f : store_files()) {
        if (f.find(cid) != std::string::npos ||
            read_file(fs::path(store_dir()) / f).find(cid) != std::string::npos) {
          out.push_back(f);
        }
      }
      return out;
    }
    fs::path idx = lease_dir() / ".strait";
    if (!fs::exists(idx)) return out;
    for (const auto& e : fs::directory_iterator(idx)) {
      if (e.path().filename().string().find(cid) != std::string::npos ||
          read_file(e.path()).find(cid) != std::string::npos) {
        out.push_back(e.path().filename().string());
      }
    }
    return out;
  }
};

// Waits until no process carries the environment entry `entry` (an orphaned child of a
// killed plugin or runtime).
void wait_for_env(const std::string& entry) {
  const std::string needle = entry + std::string(1, '\0');
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    bool found = false;
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::string pid = e.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (read_file(e.path() / "environ").find(needle) != std::string::npos) found = true;
    }
    if (!found) return;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void wait_for_orphans(const std::string& cid) {
  wait_for_env(std::string("CNI_CONTAINERID=") + cid);
}

// The ADD environment for a traced run. LeakSanitizer cannot run in a process that is
// already ptraced, so a sanitizer build (STRAIT_SANITIZE) turns it off there; ASan and UBSan
// proper still run.
cni::EnvMap traced_env(const std::string& cid, const std::string& netns) {
  cni::EnvMap env = plugin_env("ADD", cid, netns, "net1");
  env["ASAN_OPTIONS"] = "detect_leaks=0";
  return env;
}

// Runs an ADD of `exe` under strace killing it on entry to the k-th `syscall`. Returns the
// exit status: 137 when killed, the plugin's own status when it had fewer calls.
// `ip netns exec <host> strace [-f] -o <log> -e trace=<syscall> [extra...] <exe>`.
std::vector<std::string> traced_argv(const World& w, const FaultTarget& t,
                                     const std::string& syscall, const std::string& log,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"/usr/bin/ip", "netns", "exec", w.host.name(),
                                   "/usr/bin/strace"};
  if (t.follow) argv.push_back("-f");
  argv.insert(argv.end(), {"-o", log, "-e", "trace=" + syscall});
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(bin(t.executable));
  return argv;
}

// Runs an ADD of `t` under strace killing it on entry to the k-th `syscall`. Returns the
// exit status: 137 when killed, the plugin's own status when it had fewer calls (or, with
// follow, when the kill hit the IPAM child).
cni::ExecResult add_killed_at(const World& w, const FaultTarget& t, const std::string& syscall,
                              int k, const std::string& netns, const std::string& cid) {
  auto argv = traced_argv(w, t, syscall, "/dev/null",
                          {"-e", "inject=" + syscall + ":signal=KILL:when=" + std::to_string(k)});
  return cni::spawn(argv, traced_env(cid, netns), w.conf().dump());
}

// A sanitizer runtime makes system calls of its own, so their number varies a little from run
// to run. CMake defines STRAIT_SANITIZE in a sanitizer build, with either compiler (clang has
// no __SANITIZE_ADDRESS__).
#if defined(STRAIT_SANITIZE)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Number of `syscall` calls one ADD of `t` makes (traced the same way, nothing injected),
// which exits with `exit_code`.
int count_calls(const World& w, const FaultTarget& t, const std::string& syscall,
                const std::string& netns, const std::string& cid, int exit_code = 0) {
  TempDir out{"strait-strace"};
  std::string log = out.path() + "/log";
  cni::ExecResult r =
      cni::spawn(traced_argv(w, t, syscall, log, {}), traced_env(cid, netns), w.conf().dump());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == exit_code);
  std::ifstream in(log);
  // strace counts `when=` per tracee (thread or process), so with -f the k-th call is the
  // first tracee's to make its k-th call, and k runs up to the most calls of one tracee. With
  // -f every line starts with the caller's pid.
  std::map<std::string, int> per_tracee;
  for (std::string l; std::getline(in, l);) {
    std::string pid;
    if (t.follow) {
      size_t start = l.find_first_not_of("0123456789 ");
      pid = l.substr(0, l.find(' '));
      l.erase(0, start);
    }
    if (l.rfind(syscall + "(", 0) == 0) ++per_tracee[pid];
  }
  int n = 0;
  for (const auto& [pid, calls] : per_tracee) n = std::max(n, calls);
  return n;
}

// The calls of a system call to kill at, 1-based, of `total`: all of them, or `points` spread
// evenly between the first and the last (cutting `total` calls into points + 1 runs), where
// the ADD has done part of its work.
std::vector<int> kill_points(int total, int points) {
  std::vector<int> out;
  if (points <= 0 || points >= total) {
    for (int k = 1; k <= total; ++k) out.push_back(k);
    return out;
  }
  for (int i = 1; i <= points; ++i) {
    const int k = std::max(1, i * total / (points + 1));
    if (out.empty() || out.back() != k) out.push_back(k);
  }
  return out;
}

// The sweep of one kTargets row: kills `t` at every call (or t.points calls) of each of its
// system calls.
void sweep(const FaultTarget& t) {
  const std::string what = describe(t);
  auto started = std::chrono::steady_clock::now();
  World w(t.ipam, t.conf_type);
  // A pod with nothing attached, and with the killed ADD's link.
  const std::set<std::string> bare = strait::test::new_netns_links();
  const std::set<std::string> attached = strait::test::new_netns_links({"net1"});
  // A bystander attachment that GC must keep.
  TempNetns bystander_ns{"fib"};
  const std::string bystander = unique_name("bystander", 40);
  auto add_bystander = [&] {
    PluginRun by = w.run(t.executable, "ADD", bystander_ns.path(), bystander, w.conf());
    INFO(what << ": bystander ADD: " << by.out << by.err);
    REQUIRE(by.exit_code == 0);
  };
  add_bystander();
  const std::set<std::string> kept = w.leases();
  REQUIRE(kept.size() == 1);
  const std::set<std::string> host_links = w.host.links();
  // global-ipam rows with a fresh store per kill: a new store with the bystander only.
  auto reset = [&] {
    if (!t.ipam.fresh_store) return;
    w.fresh_store();
    add_bystander();
    REQUIRE(w.leases() == kept);
  };

  int kills = 0;
  int missed = 0;       // kill points past the end of this run's calls
  int child_kills = 0;  // follow: kills that hit the IPAM child
  for (const std::string& syscall : t.syscalls) {
    int total;
    {
      reset();
      TempNetns pod{"fic"};
      std::string cid = unique_name("count", 40);
      total = count_calls(w, t, syscall, pod.path(), cid);
      REQUIRE(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
    }
    // The kill points tried, in the test log (ctest --output-on-failure -V shows them).
    WARN(what << ": " << syscall << " x" << total);
    for (int k : kill_points(total, t.points)) {
      INFO(what << ": SIGKILL on entry to " << syscall << " #" << k << " of " << total);
      reset();
      TempNetns pod{"fip"};
      const std::string cid = unique_name("killed", 40);
      cni::ExecResult killed = add_killed_at(w, t, syscall, k, pod.path(), cid);
      const int rc = killed.exit_code;
      INFO("killed ADD: " << killed.out << killed.err);
      wait_for_orphans(cid);
      // 137: killed (with follow, in any thread of the plugin). 1, with follow only: the IPAM
      // child was killed and the plugin failed (naming the delegate and its status) and
      // rolled back. 0: the k-th call did not come in this run, which only threads (follow)
      // or a sanitizer runtime's own calls can cause.
      if (rc == 1 && t.follow) {
        json error;
        REQUIRE_NOTHROW(error = json::parse(killed.out));
        CHECK(error.value("msg", "").find("\"" + t.ipam.type + "\" failed (exit status 137") !=
              std::string::npos);
        ++child_kills;
      } else if (rc == 0 && (t.follow || kSanitized)) {
        ++missed;
        WARN(what << ": " << syscall << " #" << k << " of " << total << " did not come");
      } else {
        REQUIRE(rc == 137);
      }
      ++kills;

      PluginRun del = w.run(t.executable, "DEL", pod.path(), cid, w.conf());
      INFO("DEL: " << del.out << del.err);
      REQUIRE(del.exit_code == 0);
      PluginRun gc = w.gc(t.executable, {bystander});
      INFO("GC: " << gc.out << gc.err);
      REQUIRE(gc.exit_code == 0);

      CHECK(w.leases() == kept);
      CHECK(w.index_mentions(cid).empty());
      CHECK(w.host.links() == host_links);
      if (t.makes_link) CHECK(pod.links() == bare);

      // The same pod comes up on a retry and goes away again.
      PluginRun again = w.run(t.executable, "ADD", pod.path(), cid, w.conf());
      INFO("retry ADD: " << again.out << again.err);
      REQUIRE(again.exit_code == 0);
      CHECK(w.leases().size() == kept.size() + 1);
      if (t.makes_link) CHECK(pod.links() == attached);
      REQUIRE(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases() == kept);
      if (w.global()) {
        // Nothing half-done is left either: no handle record without its address, no index
        // entry without its block, no block without its index entry or owner.
        CHECK(w.index_mentions(cid).empty());
        CHECK(w.store_problems() == json::array());
      }
    }
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN(what << ": " << kills << " kill points in " << secs << " s, " << missed << " did not come, "
            << child_kills << " hit the IPAM child");
  CHECK(missed * 10 <= kills);
  if (t.follow) CHECK(child_kills > 0);
}

// ipip on this machine's kernel, which has no ipip: its ADD fails with code 50 before it opens
// the store or changes a link (overlay::Tunnel::require_support), so the kill points are the
// calls of that path (config, netns, the underlay lookup, the probe). Killed at each, it
// leaves nothing: no link, no store, no lock directory; DEL succeeds. (On a kernel with ipip
// its ADD is vxlan's shared path with tunl0 for the device; the VM phase runs it end to end.)
TEST_CASE(
    "fault injection: ipip without kernel ipip, SIGKILL at every call of its ADD, leaves "
    "nothing",
    "[fault][sweep]") {
  const FaultTarget t{"ipip", {"global-ipam", 28, false}, true, 50, {}, false, "ipip"};
  World w(t.ipam, t.conf_type);
  const std::set<std::string> host_links = w.host.links();
  int kills = 0;
  for (const std::string syscall : {"sendmsg", "recvmsg", "socket", "setns", "openat"}) {
    int total;
    {
      TempNetns pod{"fic"};
      total = count_calls(w, t, syscall, pod.path(), unique_name("count", 40), 1);
    }
    WARN("ipip: " << syscall << " x" << total);
    for (int k = 1; k <= total; ++k) {
      INFO("ipip: SIGKILL on entry to " << syscall << " #" << k << " of " << total);
      TempNetns pod{"fip"};
      const std::string cid = unique_name("killed", 40);
      // global-ipam's DEL (below) takes the node lock, so the directory is there after the
      // first round: the ADD must not be what makes it.
      const bool locks_before = fs::exists(w.data.path() + "/locks");
      cni::ExecResult killed = add_killed_at(w, t, syscall, k, pod.path(), cid);
      INFO("killed ADD: " << killed.out << killed.err);
      CHECK((killed.exit_code == 137 || (kSanitized && killed.exit_code == 1)));
      ++kills;
      CHECK(w.host.links() == host_links);
      CHECK(pod.links() == std::set<std::string>{"lo"});
      CHECK(w.made_nothing());
      CHECK(fs::exists(w.data.path() + "/locks") == locks_before);
      PluginRun del = w.run(t.executable, "DEL", pod.path(), cid, w.conf());
      INFO("DEL: " << del.out << del.err);
      CHECK(del.exit_code == 0);
      CHECK(w.made_nothing());
    }
  }
  CHECK(kills >= 20);
}

// Each kTargets row is a test case of its own, named after the row, so that ctest (which
// gets one test per test case from catch_discover_tests) runs the rows in parallel; a
// generator or a loop would make them one serial test. A new row gets its test case here.
class SweepRow : public Catch::ITestInvoker {
 public:
  explicit SweepRow(const FaultTarget& t) : target_(t) {}
  void invoke() const override { sweep(target_); }

 private:
  const FaultTarget& target_;
};

// Catch's registry copies the name and the tags; it owns the invoker. Two rows with the same
// description fail every run of the binary ("already defined").
[[maybe_unused]] const bool kSweepRowsRegistered = [] {
  for (const auto* rows : {&kTargets, &kVmTargets}) {
    const bool vm = rows == &kVmTargets;
    for (const FaultTarget& t : *rows) {
      Catch::AutoReg(new SweepRow(t), Catch::SourceLineInfo(__FILE__, __LINE__), "",
                     Catch::NameAndTags{
                         "fault injection: SIGKILL at " +
                             (t.points ? std::to_string(t.points) + " points of each system call"
                                       : std::string("every system call")) +
                             " of ADD then DEL and GC leave nothing: " + describe(t),
                         vm ? "[.vm][" + t.executable + "]" : std::string("[fault][sweep]")});
    }
  }
  return true;
}();

}  // namespace

TEST_CASE("fault injection: lifecycle misuse by a runtime", "[fault]") {
  std::set<std::string> seen;
  for (const FaultTarget& t : kTargets) {
    // One pass per executable and IPAM (the global-ipam rows differ in blockSize only).
    if (!seen.insert(t.executable + " + " + t.ipam.type).second) continue;
    const std::string what = describe(t);
    World w(t.ipam, t.conf_type);
    const std::set<std::string> host_links = w.host.links();
    INFO(what);

    DYNAMIC_SECTION(what << ": "
                         << "DEL before any ADD, and DEL twice, succeed and create nothing") {
      TempNetns pod{"fim"};
      const std::string cid = unique_name("delfirst", 40);
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.made_nothing());
      REQUIRE(w.run(t.executable, "ADD", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases().size() == 1);
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases().empty());
      CHECK(w.index_mentions(cid).empty());
      if (t.makes_link) CHECK(pod.links() == std::set<std::string>{"lo"});
    }

    DYNAMIC_SECTION(what << ": "
                         << "ADD twice without DEL fails cleanly (global-ipam alone: returns "
                            "the same address) and keeps the first attachment intact") {
      TempNetns pod{"fim"};
      const std::string cid = unique_name("twice", 40);
      PluginRun first = w.run(t.executable, "ADD", pod.path(), cid, w.conf());
      REQUIRE(first.exit_code == 0);
      const std::set<std::string> leases = w.leases();
      const std::string addr = first.json()["ips"][0]["address"];
      PluginRun second = w.run(t.executable, "ADD", pod.path(), cid, w.conf());
      INFO(second.out);
      if (t.second_add_code == 0) {
        // global-ipam: an ADD of an attachment that holds an address returns that address.
        CHECK(second.exit_code == 0);
        CHECK(second.json()["ips"][0]["address"] == addr);
      } else {
        // macvlan: the ifname is taken (4); host-local: duplicate allocation (102).
        CHECK(second.exit_code == 1);
        CHECK(second.json()["code"] == t.second_add_code);
      }
      CHECK(w.leases() == leases);
      if (t.makes_link) {
        CHECK(pod.links() == std::set<std::string>{"lo", "net1"});
        CHECK(sh_ok("ip -n " + pod.name() + " -o addr show dev net1").find(addr) !=
              std::string::npos);
      }
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases().empty());
    }

    DYNAMIC_SECTION(what << ": "
                         << "ADD, then the netns disappears, then DEL releases the lease") {
      auto pod = std::make_unique<TempNetns>("fim");
      const std::string path = pod->path();
      const std::string cid = unique_name("gone", 40);
      REQUIRE(w.run(t.executable, "ADD", path, cid, w.conf()).exit_code == 0);
      CHECK(w.leases().size() == 1);
      pod.reset();
      PluginRun del = w.run(t.executable, "DEL", path, cid, w.conf());
      INFO(del.out << del.err);
      CHECK(del.exit_code == 0);
      CHECK(w.leases().empty());
      std::set<std::string> links = w.host.links();
      if (t.conf_type == "vxlan") links.erase("strait.vxlan");  // node state, made by the ADD
      CHECK(links == host_links);
      // And with an empty CNI_NETNS (multus after the sandbox is gone).
      TempNetns pod2{"fim"};
      REQUIRE(w.run(t.executable, "ADD", pod2.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.run(t.executable, "DEL", "", cid, w.conf()).exit_code == 0);
      CHECK(w.leases().empty());
      CHECK(w.index_mentions(cid).empty());
    }
  }
}

namespace {

// cnitool as the runtime: a conflist directory, a cache directory, a pod per run.
struct ToolWorld {
  World w;
  TempDir conf_dir{"strait-fault-conf"};
  TempDir cache{"strait-fault-cache"};

  ToolWorld() {
    json list = {{"cniVersion", "1.1.0"}, {"name", w.network}, {"plugins", json::array()}};
    json plugin = w.conf();
    plugin.erase("cniVersion");
    plugin.erase("name");
    list["plugins"].push_back(plugin);
    std::ofstream(conf_dir.path() + "/10-fault.conflist") << list.dump();
  }

  cni::EnvMap env() const {
    cni::EnvMap e = plugin_env("", "", "", "");
    e.erase("CNI_COMMAND");
    e["NETCONFPATH"] = conf_dir.path();
    e["CNI_CACHE_DIR"] = cache.path();
    e["CNI_IFNAME"] = "net1";
    return e;
  }

  std::vector<std::string> argv(const std::vector<std::string>& args) const {
    std::vector<std::string> a = {"/usr/bin/ip", "netns", "exec", w.host.name(), bin("cnitool")};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }

  cni::ExecResult tool(const std::vector<std::string>& args) const {
    return cni::spawn(argv(args), env(), "");
  }

  // Names in <cache>/results (entries and anything else left there).
  std::set<std::string> cache_files() const {
    std::set<std::string> out;
    fs::path dir = fs::path(cache.path()) / "results";
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
  }
};

}  // namespace

TEST_CASE(
    "fault injection: cnitool killed at every system call of ADD then DEL and GC leave nothing",
    "[fault][sweep]") {
  ToolWorld t;
  TempNetns bystander_ns{"fib"};
  cni::ExecResult by = t.tool({"add", t.w.network, bystander_ns.path()});
  INFO(by.out << by.err);
  REQUIRE(by.exit_code == 0);
  const std::set<std::string> kept_cache = t.cache_files();
  REQUIRE(kept_cache.size() == 1);
  // "<net>-<containerID>-<ifname>"
  const std::string entry = *kept_cache.begin();
  const std::string bystander_cid =
      entry.substr(t.w.network.size() + 1, entry.size() - t.w.network.size() - 1 - 5);
  const std::set<std::string> kept_leases = t.w.leases();
  REQUIRE(kept_leases.size() == 1);

  for (const std::string syscall :
       {"openat", "write", "fsync", "rename", "renameat", "unlink", "clone3", "wait4", "read"}) {
    int total = 0;
    {
      TempNetns pod{"fic"};
      TempDir out{"strait-strace"};
      std::vector<std::string> a = t.argv({"add", t.w.network, pod.path()});
      a.insert(a.begin() + 4,
               {"/usr/bin/strace", "-o", out.path() + "/log", "-e", "trace=" + syscall});
      cni::EnvMap env = t.env();
      env["ASAN_OPTIONS"] = "detect_leaks=0";
      REQUIRE(cni::spawn(a, env, "").exit_code == 0);
      std::ifstream in(out.path() + "/log");
      for (std::string l; std::getline(in, l);) {
        if (l.rfind(std::string(syscall) + "(", 0) == 0) ++total;
      }
      REQUIRE(t.tool({"del", t.w.network, pod.path()}).exit_code == 0);
    }
    WARN("cnitool: " << syscall << " x" << total);
    for (int k = 1; k <= total; ++k) {
      INFO("cnitool: SIGKILL on entry to " << syscall << " #" << k << " of " << total);
      TempNetns pod{"fip"};
      std::vector<std::string> a = t.argv({"add", t.w.network, pod.path()});
      a.insert(a.begin() + 4,
               {"/usr/bin/strace", "-o", "/dev/null", "-e", "trace=" + std::string(syscall), "-e",
                "inject=" + std::string(syscall) + ":signal=KILL:when=" + std::to_string(k)});
      cni::EnvMap env = t.env();
      env["ASAN_OPTIONS"] = "detect_leaks=0";
      REQUIRE(cni::spawn(a, env, "").exit_code == 137);
      wait_for_env("CNI_NETNS=" + pod.path());

      cni::ExecResult del = t.tool({"del", t.w.network, pod.path()});
      INFO("DEL: " << del.out << del.err);
      REQUIRE(del.exit_code == 0);
      cni::ExecResult gc =
          t.tool({"gc", t.w.network, pod.path(), "--valid", bystander_cid + ":net1"});
      INFO("GC: " << gc.out << gc.err);
      REQUIRE(gc.exit_code == 0);

      CHECK(t.cache_files() == kept_cache);
      CHECK(t.w.leases() == kept_leases);
      CHECK(pod.links() == std::set<std::string>{"lo"});

      cni::ExecResult again = t.tool({"add", t.w.network, pod.path()});
      INFO("retry ADD: " << again.out << again.err);
      REQUIRE(again.exit_code == 0);
      CHECK(t.cache_files().size() == kept_cache.size() + 1);
      REQUIRE(t.tool({"del", t.w.network, pod.path()}).exit_code == 0);
      CHECK(t.cache_files() == kept_cache);
      CHECK(t.w.leases() == kept_leases);
    }
  }
}

namespace {

// bandwidth's row: a chained plugin, so each kill gets a fresh pod netns whose net1 is a veth
// with its peer in the host netns (what a first plugin such as ptp leaves), and the
// prevResult that plugin would hand over.
struct ShapedPod {
  TempNetns pod{"fiw"};
  std::string host_end = unique_name("fiv");
  json prev;

  explicit ShapedPod(const World& w) {
    sh_ok("ip -n " + w.host.name() + " link add " + host_end + " type veth peer name net1 netns " +
          pod.name());
    sh_ok("ip -n " + w.host.name() + " link set " + host_end + " up && ip -n " + pod.name() +
          " link set net1 up");
    prev = {{"cniVersion", "1.1.0"},
            {"interfaces",
             json::array({{{"name", host_end}}, {{"name", "net1"}, {"sandbox", pod.path()}}})},
            {"ips", json::array()}};
  }

  json conf(const World& w, bool with_prev = true) const {
    json c = {{"cniVersion", "1.1.0"},  {"name", w.network},     {"type", "bandwidth"},
              {"ingressRate", 8000000}, {"ingressBurst", 80000}, {"egressRate", 8000000},
              {"egressBurst", 80000}};
    if (with_prev) c["prevResult"] = prev;
    return c;
  }

  // The qdiscs of the host end and of net1 (a veth's default root, noqueue, is not listed by
  // `tc qdisc show` as anything else).
  std::string qdiscs(const World& w) const {
    return inspect("tc -n " + w.host.name() + " qdisc show dev " + host_end + "; tc -n " +
                   pod.name() + " qdisc show dev net1");
  }
};

std::set<std::string> ifbs(const World& w) {
  std::set<std::string> out;
  std::istringstream in(inspect("ip -n " + w.host.name() + " -o link show type ifb"));
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(": ") + 2;
    out.insert(line.substr(a, line.find(':', a) - a));
  }
  return out;
}

}  // namespace

TEST_CASE(
    "fault injection: SIGKILL at every system call of bandwidth ADD then DEL and GC leave "
    "nothing",
    "[fault][sweep]") {
  World w;
  const FaultTarget t{
      "bandwidth", {}, true, 0, {"sendmsg", "recvmsg", "socket", "setns", "openat"}};
  auto run = [&](const std::string& verb, const ShapedPod& p, const std::string& cid,
                 bool with_prev) {
    return run_plugin(bin("bandwidth"), plugin_env(verb, cid, p.pod.path(), "net1"),
                      p.conf(w, with_prev).dump(), w.host.name());
  };
  // A bystander attachment whose ifb GC must keep.
  ShapedPod bystander(w);
  const std::string bystander_cid = unique_name("bystander", 40);
  REQUIRE(run("ADD", bystander, bystander_cid, true).exit_code == 0);
  const std::set<std::string> kept = ifbs(w);
  REQUIRE(kept.size() == 1);

  int kills = 0;
  for (const std::string& syscall : t.syscalls) {
    int total = 0;
    {
      ShapedPod p(w);
      const std::string cid = unique_name("count", 40);
      TempDir out{"strait-strace"};
      const std::string log = out.path() + "/log";
      cni::ExecResult r = cni::spawn(traced_argv(w, t, syscall, log, {}),
                                     traced_env(cid, p.pod.path()), p.conf(w).dump());
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
      std::ifstream in(log);
      for (std::string l; std::getline(in, l);) total += l.rfind(syscall + "(", 0) == 0;
      REQUIRE(run("DEL", p, cid, true).exit_code == 0);
    }
    WARN("bandwidth: " << syscall << " x" << total);
    for (int k = 1; k <= total; ++k) {
      INFO("bandwidth: SIGKILL on entry to " << syscall << " #" << k << " of " << total);
      ShapedPod p(w);
      const std::string cid = unique_name("killed", 40);
      const std::string clean = p.qdiscs(w);
      cni::ExecResult killed = cni::spawn(
          traced_argv(w, t, syscall, "/dev/null",
                      {"-e", "inject=" + syscall + ":signal=KILL:when=" + std::to_string(k)}),
          traced_env(cid, p.pod.path()), p.conf(w).dump());
      INFO("killed ADD: " << killed.out << killed.err);
      if (!(killed.exit_code == 0 && kSanitized)) REQUIRE(killed.exit_code == 137);
      ++kills;
      wait_for_orphans(cid);

      // The runtime's DEL (no prevResult: ADD never returned one), then GC.
      PluginRun del = run("DEL", p, cid, false);
      INFO("DEL: " << del.out << del.err);
      REQUIRE(del.exit_code == 0);
      json gc = p.conf(w, false);
      gc["cni.dev/valid-attachments"] =
          json::array({{{"containerID", bystander_cid}, {"ifname", "net1"}}});
      PluginRun g =
          run_plugin(bin("bandwidth"), plugin_env("GC", "", "", ""), gc.dump(), w.host.name());
      INFO("GC: " << g.out << g.err);
      REQUIRE(g.exit_code == 0);
      CHECK(ifbs(w) == kept);
      CHECK(p.qdiscs(w) == clean);

      // The same pod is shaped on a retry and unshaped again.
      PluginRun again = run("ADD", p, cid, true);
      INFO("retry ADD: " << again.out << again.err);
      REQUIRE(again.exit_code == 0);
      CHECK(ifbs(w).size() == kept.size() + 1);
      REQUIRE(run("DEL", p, cid, true).exit_code == 0);
      CHECK(ifbs(w) == kept);
      CHECK(p.qdiscs(w) == clean);
    }
  }
  WARN("bandwidth: " << kills << " kill points");
}

// macvlan spawns a store-only IPAM's ADD before it creates the link (cni::EarlyIpamAdd::start).
// When no process can be made (clone3 fails with EAGAIN, as in a full pids cgroup), ADD must
// fail with an error that says so and leave nothing: its rollback (the IPAM DEL registered
// before the start) once dereferenced an EarlyIpamAdd that had never been constructed.
TEST_CASE("fault injection: macvlan whose IPAM child cannot start fails and leaves nothing",
          "[fault]") {
  World w;
  const std::set<std::string> host_links = w.host.links();
  TempNetns pod{"fit"};
  const std::string cid = unique_name("nochild", 40);
  const FaultTarget t{"macvlan", {}, true, 4, {}};
  // glibc's posix_spawn makes its child with clone3 and does not fall back on EAGAIN; the first
  // clone3 of ADD is the IPAM ADD's child (the rollback's IPAM DEL, the second, runs).
  auto argv = traced_argv(w, t, "clone3", "/dev/null", {"-e", "inject=clone3:error=EAGAIN:when=1"});
  cni::ExecResult r = cni::spawn(argv, traced_env(cid, pod.path()), w.conf().dump());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  json error;
  REQUIRE_NOTHROW(error = json::parse(r.out));
  CHECK(error.at("code") == 999);
  CHECK_THAT(error.at("msg").get<std::string>(),
             Catch::StartsWith("failed to execute \"") &&
                 Catch::EndsWith("/host-local\": Resource temporarily unavailable"));
  CHECK(pod.links() == std::set<std::string>{"lo"});
  CHECK(w.host.links() == host_links);
  CHECK(w.leases().empty());
  // The attachment comes up on a retry.
  PluginRun again = w.run("macvlan", "ADD", pod.path(), cid, w.conf());
  INFO("retry ADD: " << again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK(w.run("macvlan", "DEL", pod.path(), cid, w.conf()).exit_code == 0);
  CHECK(w.leases().empty());
}

namespace {

// A CNI_PATH holding one IPAM plugin, `strait-flood-ipam`: its ADD writes 1 MiB to stdout
// without reading stdin, its other verbs do nothing. Not a store-only type, so macvlan execs
// it from its main thread after creating the link.
struct FloodIpam {
  TempDir dir{"strait-flood"};
  FloodIpam() {
    const std::string path = dir.path() + "/strait-flood-ipam";
    std::ofstream(path) << "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
                           "exec head -c 1048576 /dev/zero\n";
    fs::permissions(path, fs::perms::owner_all);
  }
  // World's config with this IPAM and more stdin than a pipe holds.
  json conf(const World& w) const {
    json c = w.conf();
    c["ipam"] = {{"type", "strait-flood-ipam"}};
    c["padding"] = std::string(256 << 10, 'x');
    return c;
  }
};

}  // namespace

// libcni's spawn when the OS fails it mid-way, at the IPAM exec of a macvlan ADD: a poll error
// once broke out of the loop with the pipes open, and the waitpid that followed hung on a
// child blocked on its full stdout; an unchecked fcntl left the stdin pipe blocking, and
// spawn deadlocked writing a large config to a child that writes before it reads. Now each
// fails the ADD with the call named, the child is killed and reaped, the rollback runs. The
// traced run is bounded (a hang fails the test instead of stopping it).
TEST_CASE("fault injection: macvlan's IPAM exec survives a failing poll or fcntl", "[fault]") {
  struct Row {
    std::string syscall, error, msg;
  };
  for (const Row& row : {Row{"poll", "ENOMEM", "failed to wait for the output of \""},
                         Row{"fcntl", "EBADF", "failed to make the stdin pipe of \""}}) {
    DYNAMIC_SECTION(row.syscall << " fails with " << row.error) {
      World w;
      FloodIpam ipam;
      const std::set<std::string> host_links = w.host.links();
      TempNetns pod{"fis"};
      const std::string cid = unique_name("spawnfail", 40);
      cni::EnvMap env = traced_env(cid, pod.path());
      env["CNI_PATH"] = ipam.dir.path();
      const FaultTarget t{"macvlan", {}, true, 4, {}};
      // The first of each is the IPAM ADD's (the rollback's DEL makes the second).
      auto argv = traced_argv(w, t, row.syscall, "/dev/null",
                              {"-e", "inject=" + row.syscall + ":error=" + row.error + ":when=1"});
      cni::ExecResult r =
          cni::spawn(argv, env, ipam.conf(w).dump(), {.timeout = std::chrono::seconds(120)});
      INFO(r.out.substr(0, 2000) << r.err.substr(0, 2000));
      REQUIRE_FALSE(r.timed_out_after);
      REQUIRE(r.exit_code == 1);
      json error;
      REQUIRE_NOTHROW(error = json::parse(r.out));
      CHECK(error.at("code") == 999);
      CHECK_THAT(error.at("msg").get<std::string>(),
                 Catch::StartsWith(row.msg + ipam.dir.path() + "/strait-flood-ipam\""));
      CHECK(pod.links() == std::set<std::string>{"lo"});
      CHECK(w.host.links() == host_links);
      wait_for_orphans(cid);  // the killed delegate is reaped, nothing of it runs on
    }
  }
  // Untraced, the same exec completes: 1 MiB of zeros is no IPAM result.
  World w;
  FloodIpam ipam;
  TempNetns pod{"fis"};
  cni::EnvMap env = plugin_env("ADD", unique_name("flood", 40), pod.path(), "net1");
  env["CNI_PATH"] = ipam.dir.path();
  PluginRun r = run_plugin(bin("macvlan"), env, ipam.conf(w).dump(), w.host.name());
  CHECK(r.exit_code == 1);
  CHECK(r.json().at("code") == cni::kErrDecode);
  CHECK(pod.links() == std::set<std::string>{"lo"});
}

// sriov (the sriov-fakepf fixture: the product on a fake PF whose VF settings are a file, see
// test/support/sriov_world.h) killed at every call of ADD: between any two VF settings (each
// one a whole write of the PF's file), around the record and index writes, the move into the
// pod, the rename there, the IPAM exec. After DEL and GC the VF is exactly as before the ADD:
// every PF-side setting, its netdev back on the host under its name with its MAC, MTU and
// state; no record, no index, no lease; the bystander on another VF untouched.
TEST_CASE(
    "fault injection: sriov killed at every system call of ADD, then DEL and GC restore "
    "the VF",
    "[fault][sweep]") {
  using strait::test::SriovNode;
  SriovNode node;
  const json settings = {{"vlan", 100},
                         {"vlanQoS", 3},
                         {"vlanProto", "802.1ad"},
                         {"spoofchk", "off"},
                         {"trust", "on"},
                         {"link_state", "enable"},
                         {"max_tx_rate", 1000},
                         {"mac", "02:aa:00:00:00:01"}};
  TempNetns bystander_ns{"fsb"};
  const std::string bystander = unique_name("svbystander", 40);
  REQUIRE(
      node.run("ADD", bystander_ns.path(), bystander, "net1", node.conf(0, settings)).exit_code ==
      0);
  const SriovNode::VfState held_0 = node.vf_state(0);
  const std::set<std::string> kept_files = node.state_files();
  const std::set<std::string> kept_leases = node.leases();
  // VF 1: MTU 9000, down, so the netdev's return is checked in full.
  const SriovNode::VfState before = node.vf_state(1);
  const json conf = node.conf(1, settings);
  const json gc_conf = [&] {
    json c = node.conf(1);
    c["cni.dev/valid-attachments"] =
        json::array({{{"containerID", bystander}, {"ifname", "net1"}}});
    return c;
  }();
  const auto strace = [&](const std::string& syscall, const std::string& log, int kill_at,
                          const std::string& netns, const std::string& cid) {
    std::vector<std::string> argv = {"/usr/bin/ip",     "netns", "exec", node.host.name(),
                                     "/usr/bin/strace", "-o",    log,    "-e",
                                     "trace=" + syscall};
    if (kill_at > 0) {
      argv.insert(argv.end(),
                  {"-e", "inject=" + syscall + ":signal=KILL:when=" + std::to_string(kill_at)});
    }
    argv.push_back(strait::test::test_bin("sriov-fakepf"));
    return cni::spawn(argv, traced_env(cid, netns), conf.dump());
  };
  const auto check_back = [&](const TempNetns& pod) {
    const SriovNode::VfState now = node.vf_state(1);
    INFO("before: " << strait::test::describe(before)
                    << "\nnow:    " << strait::test::describe(now));
    CHECK(now == before);
    CHECK(pod.links() == std::set<std::string>{"lo"});
    CHECK(node.state_files() == kept_files);
    CHECK(node.leases() == kept_leases);
    CHECK(node.vf_state(0) == held_0);
  };

  int kills = 0;
  for (const std::string syscall : {"sendmsg", "recvmsg", "setns", "openat", "write", "rename",
                                    "fsync", "flock", "vfork", "clone", "clone3", "wait4"}) {
    int total = 0;
    {
      TempNetns pod{"fsc"};
      const std::string cid = unique_name("svcount", 40);
      TempDir out{"strait-strace"};
      cni::ExecResult r = strace(syscall, out.path() + "/log", 0, pod.path(), cid);
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
      std::ifstream in(out.path() + "/log");
      for (std::string l; std::getline(in, l);) total += l.rfind(syscall + "(", 0) == 0;
      REQUIRE(node.run("DEL", pod.path(), cid, "net1", conf).exit_code == 0);
      check_back(pod);
    }
    WARN("sriov: " << syscall << " x" << total);
    for (int k = 1; k <= total; ++k) {
      INFO("sriov: SIGKILL on entry to " << syscall << " #" << k << " of " << total);
      TempNetns pod{"fsp"};
      const std::string cid = unique_name("svkilled", 40);
      cni::ExecResult killed = strace(syscall, "/dev/null", k, pod.path(), cid);
      INFO("killed ADD: " << killed.out << killed.err);
      wait_for_orphans(cid);
      REQUIRE(killed.exit_code == (kSanitized && killed.exit_code == 0 ? 0 : 137));
      ++kills;
      PluginRun del = node.run("DEL", pod.path(), cid, "net1", conf);
      INFO("DEL: " << del.out << del.err);
      REQUIRE(del.exit_code == 0);
      PluginRun gc = node.run("GC", "", "", "", gc_conf);
      INFO("GC: " << gc.out << gc.err);
      REQUIRE(gc.exit_code == 0);
      check_back(pod);
      // The same pod comes up on a retry and goes away again.
      PluginRun again = node.run("ADD", pod.path(), cid, "net1", conf);
      INFO("retry ADD: " << again.out << again.err);
      REQUIRE(again.exit_code == 0);
      CHECK(pod.links() == std::set<std::string>{"lo", "net1"});
      REQUIRE(node.run("DEL", pod.path(), cid, "net1", conf).exit_code == 0);
      check_back(pod);
    }
  }
  WARN("sriov: " << kills << " kill points");
  CHECK(kills > 100);
}
