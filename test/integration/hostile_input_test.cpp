#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/process/invoke.h"
#include "test/support/fake_sysfs.h"
#include "test/support/fake_vf_control.h"
#include "test/support/harness.h"

// The hostile input corpus (test/fixtures/hostile/): every case is fed to every executable of
// kTargets, run for real inside a "host" netns made here, with a pod netns and a lease
// directory. Each must fail with the case's CNI code, a message naming the field, exit
// status 1, and change nothing: no link or qdisc in either netns, no file anywhere under the
// temporary root that holds the dataDir.
//
// Case files (JSON): "about"; "verb" (default ADD); "env": CNI_* overrides, null removes one;
// the config is the target's base config with "patch" applied as a JSON merge patch (RFC 7386)
// or, instead, "stdin" verbatim, "stdin_hex", or "generate": "nested"/"huge"; "stdin_replace":
// [from, to] edits the dumped config text (for numbers JSON libraries cannot hold); "code" and
// "msg" (substrings the error's msg must contain). common/ applies to every target, <target>/
// to that one.
//
// A new executable joins with one targets() row: its binary, its base config and its case dir.
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::FakePfState;
using strait::test::FakeSysfs;
using strait::test::fixture;
using strait::test::inspect;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::read_file;
using strait::test::run_plugin;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

struct Target {
  std::string executable;
  // @DATADIR@, @NETWORK@ are replaced; the host netns has a master "mst0".
  json base;
  // sriov: the sriov-fakepf fixture on a fake PF "svpf0" (under @DATADIR@/sys, so the
  // comparison covers its VF settings) whose VF 0 (0000:af:02.0) is the veth "svvf0".
  bool fake_pf = false;
  // A chained plugin's pod: net1 in the pod netns is a veth whose peer is in the host netns.
  bool veth_pod = false;
  // The control's ADD: 0, it succeeds; else the code it must fail with (ipip on a kernel
  // without ipip: 50, after every key was read, so each case still fails for what it changes).
  int control_code = 0;
};

std::string binary(const Target& t) {
  return t.fake_pf ? strait::test::test_bin("sriov-fakepf") : bin(t.executable);
}

json host_local_ipam() {
  return {{"type", "host-local"},
          {"dataDir", "@DATADIR@"},
          {"ranges", json::array({json::array({{{"subnet", "192.0.2.0/24"},
                                                {"rangeStart", "192.0.2.10"},
                                                {"rangeEnd", "192.0.2.50"}}})})},
          {"routes", json::array({{{"dst", "0.0.0.0/0"}}})}};
}

// The store and the node lock directory lie under the compared temporary root, so "nothing
// changed" covers them; neither exists before the call (a failed call must not create them).
json global_ipam_ipam() {
  return {{"type", "global-ipam"},
          {"nodeName", "hostile-node"},
          {"pools", json::array({{{"name", "hostile-v4"},
                                  {"cidr", "192.0.2.0/24"},
                                  {"blockSize", 28},
                                  {"gateway", "192.0.2.1"}}})},
          {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
          {"store", {{"type", "file"}, {"path", "@DATADIR@/global-store"}}},
          {"nodeLockDir", "@DATADIR@/global-locks"}};
}

std::vector<Target> targets() {
  return {
      {"macvlan",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "macvlan"},
        {"master", "mst0"},
        {"ipam", host_local_ipam()}}},
      {"host-local",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "macvlan"},
        {"ipam", host_local_ipam()}}},
      {"global-ipam",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "macvlan"},
        {"ipam", global_ipam_ipam()}}},
      {"sriov",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "sriov"},
        {"deviceID", "0000:af:02.0"},
        {"vlan", 100},
        {"dataDir", "@DATADIR@/sriov"},
        {"sysfsRoot", "@DATADIR@/sys"},
        {"ipam", host_local_ipam()}},
       /*fake_pf=*/true},
      {"bandwidth",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "bandwidth"},
        {"ingressRate", 8000000},
        {"ingressBurst", 80000},
        {"egressRate", 8000000},
        {"egressBurst", 80000},
        {"prevResult",
         {{"cniVersion", "1.1.0"},
          {"interfaces", json::array({{{"name", "bwh0"}}, {{"name", "net1"}, {"sandbox", "pod"}}})},
          {"ips", json::array()}}}},
       /*fake_pf=*/false,
       /*veth_pod=*/true},
      // mst0 (198.51.100.1/24) is the underlay.
      {"vxlan",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "vxlan"},
        {"underlayInterface", "mst0"},
        {"ipam", global_ipam_ipam()}}},
      // This machine's kernel has no ipip: the control's ADD is the clear error.
      {"ipip",
       {{"cniVersion", "1.1.0"},
        {"name", "@NETWORK@"},
        {"type", "ipip"},
        {"underlayInterface", "mst0"},
        {"ipipMode", "crossSubnet"},
        {"ipam", global_ipam_ipam()}},
       /*fake_pf=*/false,
       /*veth_pod=*/false,
       /*control_code=*/cni::kErrNotAvailable},
  };
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// Everything a failed call must not change.
struct Snapshot {
  std::string host_links, pod_links, host_qdiscs, pod_qdiscs;
  std::map<std::string, std::string> files;  // path under root -> content ("<dir>" for dirs)
  bool operator==(const Snapshot&) const = default;
};

std::string describe(const Snapshot& s) {
  std::string out = "host links: " + s.host_links + "\npod links: " + s.pod_links +
                    "\nhost qdiscs: " + s.host_qdiscs + "\npod qdiscs: " + s.pod_qdiscs +
                    "\nfiles:";
  for (const auto& [k, v] : s.files) out += " " + k;
  return out;
}

Snapshot snapshot(const TempNetns& host, const TempNetns& pod, const fs::path& root) {
  Snapshot s;
  // ip's stderr is left out: "Peer netns reference is invalid." comes and goes with whether
  // the veth peer's netns has an id here yet (assigned lazily), which no plugin changes.
  s.host_links = sh_ok("ip -n " + host.name() + " -o link show 2>/dev/null | cut -d: -f2");
  s.pod_links = sh_ok("ip -n " + pod.name() + " -o link show 2>/dev/null | cut -d: -f2");
  s.host_qdiscs = inspect("tc -n " + host.name() + " qdisc show");
  s.pod_qdiscs = inspect("tc -n " + pod.name() + " qdisc show");
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    // sriov's per-VF lock files hold nothing and stay (unlinking a flock file races with the
    // next holder opening it), as sriov-cni's do: a call that failed after taking the lock,
    // when host-local refused its config, leaves only them.
    if (rel.rfind("data/sriov", 0) == 0 && (rel == "data/sriov" || rel == "data/sriov/pci" ||
                                            rel.find("/vf_lock") != std::string::npos)) {
      continue;
    }
    s.files[rel] = e.is_directory() ? "<dir>" : read_file(e.path());
    // The fake PF's VF settings must be as before; its log of calls grows when a failed ADD
    // applied settings and put them back.
    if (e.path().filename() == "strait-fake-pf.json") {
      s.files[rel] = json::parse(s.files[rel]).at("pfs").dump();
    }
  }
  return s;
}

struct Case {
  std::string name;
  json spec;
};

std::vector<Case> load_cases(const std::string& dir) {
  std::vector<Case> out;
  fs::path p = fixture("hostile/" + dir);
  if (!fs::exists(p)) return out;
  for (const auto& e : fs::directory_iterator(p)) {
    if (e.path().extension() != ".json") continue;
    out.push_back({dir + "/" + e.path().stem().string(), json::parse(read_file(e.path()))});
  }
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  return out;
}

std::string build_stdin(const json& spec, const json& base, const std::string& data_dir,
                        const std::string& network) {
  std::string text;
  if (spec.contains("stdin")) {
    text = spec["stdin"].get<std::string>();
  } else if (spec.contains("stdin_hex")) {
    text = from_hex(spec["stdin_hex"].get<std::string>());
  } else if (spec.value("generate", "") == "nested") {
    // A valid config whose "args" holds `depth` nested arrays.
    size_t depth = spec.value("depth", size_t{100000});
    json c = base;
    c["args"] = "@NEST@";
    text = c.dump();
    replace_all(text, "\"@NEST@\"", std::string(depth, '[') + std::string(depth, ']'));
  } else if (spec.value("generate", "") == "huge") {
    json c = base;
    c["padding"] = std::string(spec.value("bytes", size_t{10u << 20}), 'x');
    text = c.dump();
  } else {
    json c = base;
    if (spec.contains("patch")) c.merge_patch(spec["patch"]);
    text = c.dump();
  }
  if (spec.contains("stdin_replace")) {
    replace_all(text, spec["stdin_replace"][0].get<std::string>(),
                spec["stdin_replace"][1].get<std::string>());
  }
  replace_all(text, "@DATADIR@", data_dir);
  replace_all(text, "@NETWORK@", network);
  return text;
}

// What every case and the control run in: a "host" netns whose veth mst0 is the master, a pod
// netns, and a fresh data directory.
struct Scene {
  TempNetns host{"hih"};
  TempNetns pod{"hip"};
  TempDir root{"strait-hostile"};
  std::string data_dir = root.path() + "/data";

  explicit Scene(const Target& t) {
    sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0");
    sh_ok("ip -n " + host.name() + " link set mst0 up");
    if (t.veth_pod) {
      sh_ok("ip -n " + host.name() + " link add bwh0 type veth peer name net1 netns " + pod.name());
      sh_ok("ip -n " + host.name() + " link set bwh0 up && ip -n " + pod.name() +
            " link set net1 up");
    }
    sh_ok("ip -n " + host.name() + " addr add 198.51.100.1/24 dev mst0");  // vxlan's underlay
    fs::create_directory(data_dir);
    if (t.fake_pf) {
      sh_ok("ip -n " + host.name() + " link add svpf0 type veth peer name svpfp");
      sh_ok("ip -n " + host.name() + " link add svvf0 type veth peer name svvfp");
      FakeSysfs tree(data_dir + "/sys");
      tree.add_pf("0000:af:00.0", "svpf0");
      tree.add_vf("0000:af:00.0", 0, "0000:af:02.0", "svvf0", "iavf");
      FakePfState(strait::test::fake_pf_state_path(data_dir + "/sys")).add_pf("svpf0", 1);
    }
  }
};

void run_case(const Target& t, const Case& c) {
  INFO("target " << t.executable << ", case " << c.name << ": " << c.spec.value("about", ""));
  Scene scene(t);
  const TempNetns& host = scene.host;
  const TempNetns& pod = scene.pod;
  const TempDir& root = scene.root;
  const std::string& data_dir = scene.data_dir;
  const std::string network = unique_name("hinet", 40);

  const std::string verb = c.spec.value("verb", "ADD");
  cni::EnvMap env = plugin_env(verb, unique_name("hostile", 40), pod.path(), "net1");
  const json env_overrides = c.spec.value("env", json::object());
  for (const auto& [k, v] : env_overrides.items()) {
    if (v.is_null()) {
      env.erase(k);
    } else {
      env[k] = v.get<std::string>();
    }
  }
  const std::string input = build_stdin(c.spec, t.base, data_dir, network);

  Snapshot before = snapshot(host, pod, root.path());
  PluginRun r = run_plugin(binary(t), env, input, host.name());
  INFO("stdout: " << r.out.substr(0, 2000) << "\nstderr: " << r.err.substr(0, 2000));
  CHECK(r.exit_code == 1);
  json err;
  REQUIRE_NOTHROW(err = r.json());
  CHECK(err.value("code", 0) == c.spec.at("code").get<int>());
  const std::string msg = err.value("msg", "");
  const json wanted = c.spec.value("msg", json::array());
  for (const auto& want : wanted) {
    INFO("msg must contain " << want);
    CHECK(msg.find(want.get<std::string>()) != std::string::npos);
  }
  Snapshot after = snapshot(host, pod, root.path());
  INFO("before:\n" << describe(before) << "\nafter:\n" << describe(after));
  CHECK(before == after);
}

}  // namespace

// The control: each target's base config, unpatched, is accepted (ADD then DEL succeed), so a
// case fails because of what it changes and not because the base is broken.
TEST_CASE("hostile input: the base config of every target is accepted", "[hostile]") {
  for (const Target& t : targets()) {
    INFO("target " << t.executable);
    Scene scene(t);
    const std::string input =
        build_stdin(json::object(), t.base, scene.data_dir, unique_name("hinet", 40));
    const std::string cid = unique_name("control", 40);
    PluginRun add = run_plugin(binary(t), plugin_env("ADD", cid, scene.pod.path(), "net1"), input,
                               scene.host.name());
    INFO("ADD: " << add.out << add.err);
    if (t.control_code != 0) {
      CHECK(add.exit_code == 1);
      CHECK(add.json().value("code", 0) == t.control_code);
    } else {
      CHECK(add.exit_code == 0);
    }
    PluginRun del = run_plugin(binary(t), plugin_env("DEL", cid, scene.pod.path(), "net1"), input,
                               scene.host.name());
    INFO("DEL: " << del.out << del.err);
    CHECK(del.exit_code == 0);
  }
}

TEST_CASE("hostile input: every case fails with its code, names the field, changes nothing",
          "[hostile]") {
  size_t ran = 0;
  for (const Target& t : targets()) {
    REQUIRE(fs::exists(binary(t)));
    std::vector<Case> cases = load_cases("common");
    for (auto& c : load_cases(t.executable)) cases.push_back(std::move(c));
    REQUIRE(cases.size() >= 30);
    for (const Case& c : cases) {
      // A case may name the targets it applies to ("only"), e.g. CHECK-specific ones.
      if (c.spec.contains("only")) {
        const auto& only = c.spec["only"];
        if (std::find(only.begin(), only.end(), t.executable) == only.end()) continue;
      }
      DYNAMIC_SECTION(t.executable << " " << c.name) { run_case(t, c); }
      ++ran;
    }
  }
  CHECK(ran >= 80);
}

// A stdin that cannot be read (here a directory: read(2) fails with EISDIR) is an I/O error
// (5), not a decoding failure (6) of whatever was read before it; nothing changes.
TEST_CASE("hostile input: an unreadable stdin is an I/O error", "[hostile]") {
  for (const Target& t : targets()) {
    INFO("target " << t.executable);
    Scene scene(t);
    cni::EnvMap env = plugin_env("ADD", unique_name("hostile", 40), scene.pod.path(), "net1");
    Snapshot before = snapshot(scene.host, scene.pod, scene.root.path());
    cni::ExecResult r = cni::spawn({"/usr/bin/ip", "netns", "exec", scene.host.name(), "/bin/sh",
                                    "-c", "exec \"$0\" < /", binary(t)},
                                   env, "");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 1);
    json err;
    REQUIRE_NOTHROW(err = json::parse(r.out));
    CHECK(err.value("code", 0) == cni::kErrIo);
    CHECK(err.value("msg", "") == "failed to read stdin: Is a directory");
    CHECK(snapshot(scene.host, scene.pod, scene.root.path()) == before);
  }
}
