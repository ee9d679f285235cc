#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/invoke.h"
#include "test/integration/harness.h"

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
// Only the traced process is killed (no -f): a running IPAM child is orphaned, as when a
// runtime's timeout kills a plugin, and finishes on its own; we wait for it before DEL.
//
// A new executable joins with one kTargets row.
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::run_plugin;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

struct FaultTarget {
  std::string executable;
  bool makes_link;  // whether ADD puts a link into the pod netns
  std::vector<std::string> syscalls;
};

const std::vector<FaultTarget> kTargets = {
    {"macvlan",
     true,
     {"sendmsg", "recvmsg", "setns", "socket", "openat", "write", "clone", "clone3", "vfork",
      "wait4", "sendto"}},
    {"host-local",
     false,
     {"openat", "write", "flock", "renameat", "rename", "unlink", "unlinkat", "mkdir", "mkdirat",
      "fsync", "fdatasync", "ftruncate", "close", "utimensat", "linkat", "getdents64"}},
};

struct World {
  TempNetns host{"fih"};
  TempDir data{"strait-fault"};
  std::string network = unique_name("finet", 40);

  World() {
    sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0");
    sh_ok("ip -n " + host.name() + " link set mst0 up");
  }

  json conf() const {
    json range = {{"subnet", "192.0.2.0/24"},
                  {"rangeStart", "192.0.2.10"},
                  {"rangeEnd", "192.0.2.250"},
                  {"gateway", "192.0.2.1"}};
    return {{"cniVersion", "1.1.0"},
            {"name", network},
            {"type", "macvlan"},
            {"master", "mst0"},
            {"ipam",
             {{"type", "host-local"},
              {"dataDir", data.path()},
              {"ranges", json::array({json::array({range})})},
              {"routes", json::array({{{"dst", "0.0.0.0/0"}}})}}}};
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

  // Lease files (named like addresses) and what they hold.
  std::set<std::string> leases() const {
    std::set<std::string> out;
    if (!fs::exists(lease_dir())) return out;
    for (const auto& e : fs::directory_iterator(lease_dir())) {
      std::string n = e.path().filename().string();
      if (n == "lock" || n.rfind("last_reserved_ip", 0) == 0 || n == ".strait") continue;
      std::ifstream in(e.path());
      std::stringstream s;
      s << in.rdbuf();
      out.insert(n + "=" + s.str());
    }
    return out;
  }

  // Index entries that mention `cid` (name or content).
  std::vector<std::string> index_mentions(const std::string& cid) const {
    std::vector<std::string> out;
    fs::path idx = lease_dir() / ".strait";
    if (!fs::exists(idx)) return out;
    for (const auto& e : fs::directory_iterator(idx)) {
      std::ifstream in(e.path());
      std::stringstream s;
      s << in.rdbuf();
      if (e.path().filename().string().find(cid) != std::string::npos ||
          s.str().find(cid) != std::string::npos) {
        out.push_back(e.path().filename().string());
      }
    }
    return out;
  }
};

// iproute2 may print "Peer netns reference is invalid" on stderr for a macvlan whose master's
// netns id is not mapped in this netns: only stdout names links.
std::set<std::string> link_names(const TempNetns& ns) {
  std::set<std::string> out;
  std::istringstream in(
      sh_ok("ip -n " + ns.name() + " -o link show 2>/dev/null | cut -d: -f2 | cut -d@ -f1"));
  for (std::string l; std::getline(in, l);) {
    l.erase(0, l.find_first_not_of(' '));
    if (!l.empty()) out.insert(l);
  }
  return out;
}

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
      std::ifstream in(e.path() / "environ", std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      if (s.str().find(needle) != std::string::npos) found = true;
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
int add_killed_at(const World& w, const std::string& exe, const std::string& syscall, int k,
                  const std::string& netns, const std::string& cid) {
  std::vector<std::string> argv = {"/usr/bin/ip",
                                   "netns",
                                   "exec",
                                   w.host.name(),
                                   "/usr/bin/strace",
                                   "-o",
                                   "/dev/null",
                                   "-e",
                                   "trace=" + syscall,
                                   "-e",
                                   "inject=" + syscall + ":signal=KILL:when=" + std::to_string(k),
                                   bin(exe)};
  cni::ExecResult r = cni::spawn(argv, traced_env(cid, netns), w.conf().dump());
  return r.exit_code;
}

// Number of `syscall` calls one ADD of `exe` makes (traced the same way, nothing injected).
int count_calls(const World& w, const std::string& exe, const std::string& syscall,
                const std::string& netns, const std::string& cid) {
  TempDir out{"strait-strace"};
  std::string log = out.path() + "/log";
  std::vector<std::string> argv = {"/usr/bin/ip",      "netns", "exec", w.host.name(),
                                   "/usr/bin/strace",  "-o",    log,    "-e",
                                   "trace=" + syscall, bin(exe)};
  cni::ExecResult r = cni::spawn(argv, traced_env(cid, netns), w.conf().dump());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream in(log);
  int n = 0;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(syscall + "(", 0) == 0) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("fault injection: SIGKILL at every system call of ADD then DEL and GC leave nothing",
          "[fault][sweep]") {
  for (const FaultTarget& t : kTargets) {
    World w;
    // A bystander attachment that GC must keep.
    TempNetns bystander_ns{"fib"};
    const std::string bystander = unique_name("bystander", 40);
    REQUIRE(w.run(t.executable, "ADD", bystander_ns.path(), bystander, w.conf()).exit_code == 0);
    const std::set<std::string> kept = w.leases();
    REQUIRE(kept.size() == 1);
    const std::set<std::string> host_links = link_names(w.host);

    for (const std::string& syscall : t.syscalls) {
      int total;
      {
        TempNetns pod{"fic"};
        std::string cid = unique_name("count", 40);
        total = count_calls(w, t.executable, syscall, pod.path(), cid);
        REQUIRE(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      }
      // The kill points tried, in the test log (ctest --output-on-failure -V shows them).
      WARN(t.executable << ": " << syscall << " x" << total);
      for (int k = 1; k <= total; ++k) {
        INFO(t.executable << ": SIGKILL on entry to " << syscall << " #" << k << " of " << total);
        TempNetns pod{"fip"};
        const std::string cid = unique_name("killed", 40);
        int rc = add_killed_at(w, t.executable, syscall, k, pod.path(), cid);
        REQUIRE(rc == 137);
        wait_for_orphans(cid);

        PluginRun del = w.run(t.executable, "DEL", pod.path(), cid, w.conf());
        INFO("DEL: " << del.out << del.err);
        REQUIRE(del.exit_code == 0);
        PluginRun gc = w.gc(t.executable, {bystander});
        INFO("GC: " << gc.out << gc.err);
        REQUIRE(gc.exit_code == 0);

        CHECK(w.leases() == kept);
        CHECK(w.index_mentions(cid).empty());
        CHECK(link_names(w.host) == host_links);
        if (t.makes_link) CHECK(link_names(pod) == std::set<std::string>{"lo"});

        // The same pod comes up on a retry and goes away again.
        PluginRun again = w.run(t.executable, "ADD", pod.path(), cid, w.conf());
        INFO("retry ADD: " << again.out << again.err);
        REQUIRE(again.exit_code == 0);
        CHECK(w.leases().size() == kept.size() + 1);
        if (t.makes_link) CHECK(link_names(pod) == std::set<std::string>{"lo", "net1"});
        REQUIRE(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
        CHECK(w.leases() == kept);
      }
    }
  }
}

TEST_CASE("fault injection: lifecycle misuse by a runtime", "[fault]") {
  for (const FaultTarget& t : kTargets) {
    World w;
    const std::set<std::string> host_links = link_names(w.host);
    INFO(t.executable);

    DYNAMIC_SECTION(
        t.executable << ": "
                     << "DEL before any ADD, and DEL twice, succeed and create nothing") {
      TempNetns pod{"fim"};
      const std::string cid = unique_name("delfirst", 40);
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(!fs::exists(w.lease_dir()));
      REQUIRE(w.run(t.executable, "ADD", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases().size() == 1);
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases().empty());
      if (t.makes_link) CHECK(link_names(pod) == std::set<std::string>{"lo"});
    }

    DYNAMIC_SECTION(
        t.executable
        << ": "
        << "ADD twice without DEL fails cleanly and keeps the first attachment intact") {
      TempNetns pod{"fim"};
      const std::string cid = unique_name("twice", 40);
      PluginRun first = w.run(t.executable, "ADD", pod.path(), cid, w.conf());
      REQUIRE(first.exit_code == 0);
      const std::set<std::string> leases = w.leases();
      const std::string addr = first.json()["ips"][0]["address"];
      PluginRun second = w.run(t.executable, "ADD", pod.path(), cid, w.conf());
      INFO(second.out);
      CHECK(second.exit_code == 1);
      // macvlan: the ifname is taken (4); host-local: duplicate allocation (102).
      CHECK(second.json()["code"] == (t.makes_link ? 4 : 102));
      CHECK(w.leases() == leases);
      if (t.makes_link) {
        CHECK(link_names(pod) == std::set<std::string>{"lo", "net1"});
        CHECK(sh_ok("ip -n " + pod.name() + " -o addr show dev net1").find(addr) !=
              std::string::npos);
      }
      CHECK(w.run(t.executable, "DEL", pod.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.leases().empty());
    }

    DYNAMIC_SECTION(t.executable << ": "
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
      CHECK(link_names(w.host) == host_links);
      // And with an empty CNI_NETNS (multus after the sandbox is gone).
      TempNetns pod2{"fim"};
      REQUIRE(w.run(t.executable, "ADD", pod2.path(), cid, w.conf()).exit_code == 0);
      CHECK(w.run(t.executable, "DEL", "", cid, w.conf()).exit_code == 0);
      CHECK(w.leases().empty());
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
      CHECK(link_names(pod) == std::set<std::string>{"lo"});

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
