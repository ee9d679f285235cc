// global-ipam run for real: many processes of the executable on several simulated nodes
// against one store, processes killed mid-ADD, and a pod that gets its address from its
// node's block through cnitool and macvlan. Stores live in temp directories; the pod test's
// namespaces are made here and every address is TEST-NET.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/block_layout.h"
#include "ipam/global/etcd_store.h"
#include "ipam/global/file_store.h"
#include "ipam/global/records.h"
#include "libcni/core/error.h"
#include "libcni/core/fd.h"
#include "libcni/process/invoke.h"
#include "test/support/etcd_fixture.h"
#include "test/support/harness.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::run_plugin;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;
using namespace std::chrono_literals;

// The node locks of every test here: a temp directory, not /run.
const std::string& lock_dir() {
  static TempDir dir("strait-gipam-locks");
  return dir.path();
}

json ipam_conf(const std::string& network, const json& store, const char* cidr = "10.128.0.0/20") {
  return {{"cniVersion", "1.1.0"},
          {"name", network},
          {"type", "global-ipam"},
          {"ipam",
           {{"type", "global-ipam"},
            {"pools", {{{"name", "p"}, {"cidr", cidr}}}},
            {"store", store},
            {"nodeLockDir", lock_dir()}}}};
}

cni::EnvMap env_for(const std::string& command, const std::string& id, const std::string& node) {
  cni::EnvMap env = plugin_env(command, id, "/run/netns/unused", "eth0");
  env["K8S_NODE_NAME"] = node;
  return env;
}

// Every allocation in the store: ip -> (handle, node that took it, block affinity).
struct Alloc {
  std::string handle;
  std::string node;
  std::string affinity;
};
std::map<std::string, Alloc> store_allocations(ipam::KvStore& store) {
  std::map<std::string, Alloc> out;
  for (const auto& e : store.list("blocks/")) {
    auto b = ipam::Block::from_json(json::parse(e.value));
    for (const auto& [ord, a] : b.allocations) {
      bool fresh = out.emplace(b.address(ord).str(), Alloc{a.handle, a.node, b.affinity}).second;
      CHECK(fresh);
    }
  }
  return out;
}

// A plugin process started in the background (fork + exec) so the test can kill it.
class Child {
 public:
  Child(const std::string& binary, const cni::EnvMap& env, const std::string& input_file) {
    std::vector<std::string> envs;
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int in = open(input_file.c_str(), O_RDONLY);
      int null = open("/dev/null", O_WRONLY);
      if (in < 0 || null < 0) _exit(127);
      dup2(in, 0);
      dup2(null, 1);
      dup2(null, 2);
      std::vector<char*> envp;
      for (auto& s : envs) envp.push_back(s.data());
      envp.push_back(nullptr);
      char* argv[] = {const_cast<char*>(binary.c_str()), nullptr};
      execve(binary.c_str(), argv, envp.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) kill9();
  }
  void kill9() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace

// What a stress run saw.
struct Stress {
  int failures = 0;
  int duplicates = 0;
  std::vector<std::string> errors;
  std::map<std::string, std::string> live;  // ip -> container ID, as the workers hold them
  double seconds = 0;
};

// `workers` threads, each running the real executable `adds` times as ADD on node
// "node-<w % 4>" and a DEL of its oldest address after every second ADD, all in parallel.
// `progress(n)` is called by worker 0 after its n-th ADD.
Stress stress(const json& conf, int workers, int adds,
              const std::function<void(int)>& progress = nullptr) {
  std::string input = conf.dump();
  std::mutex mu;
  Stress st;
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mu);
    ++st.failures;
    st.errors.push_back(what);
  };
  auto worker = [&](int w) {
    std::string node = "node-" + std::to_string(w % 4);
    std::vector<std::pair<std::string, std::string>> held;  // id, ip
    for (int i = 0; i < adds; ++i) {
      std::string id = "w" + std::to_string(w) + "c" + std::to_string(i);
      auto r = run_plugin(bin("global-ipam"), env_for("ADD", id, node), input);
      if (w == 0 && progress) progress(i + 1);
      if (r.exit_code != 0) {
        fail(r.out + r.err);
        continue;
      }
      std::string addr = json::parse(r.out)["ips"][0]["address"];
      std::string ip = addr.substr(0, addr.find('/'));
      {
        std::lock_guard lock(mu);
        if (!st.live.emplace(ip, id).second) ++st.duplicates;
      }
      held.emplace_back(id, ip);
      if (i % 2 == 1) {  // release every other address, oldest first
        auto [rid, rip] = held.front();
        held.erase(held.begin());
        {
          std::lock_guard lock(mu);
          st.live.erase(rip);
        }
        auto d = run_plugin(bin("global-ipam"), env_for("DEL", rid, node), input);
        if (d.exit_code != 0) fail(d.out + d.err);
      }
    }
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) threads.emplace_back(worker, w);
  for (auto& t : threads) t.join();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return st;
}

// The store agrees with what the workers hold: one allocation per live address, taken by
// the worker's node, inside a block of that node (nobody needed to borrow: the pools are
// large enough); every block in its owner's index; one handle record per live attachment.
void verify_stress(ipam::KvStore& store, const std::string& network, const Stress& st,
                   size_t expected_live) {
  INFO((st.errors.empty() ? "" : st.errors.front()));
  CHECK(st.failures == 0);
  CHECK(st.duplicates == 0);
  auto all = store_allocations(store);
  CHECK(all.size() == st.live.size());
  CHECK(all.size() == expected_live);
  int borrowed = 0;
  for (const auto& [ip, id] : st.live) {
    REQUIRE(all.count(ip));
    CHECK(all.at(ip).handle == network + "/" + id + "/eth0");
    int w = std::stoi(id.substr(1, id.find('c') - 1));
    std::string node = "node-" + std::to_string(w % 4);
    CHECK(all.at(ip).node == node);
    if (all.at(ip).affinity != node) ++borrowed;
  }
  CHECK(borrowed == 0);
  std::set<std::string> owners;
  for (const auto& e : store.list("blocks/p/")) {
    auto b = ipam::Block::from_json(json::parse(e.value));
    owners.insert(b.affinity);
    CHECK(store.get(ipam::records::affinity_key(b.affinity, "p", b.cidr)));
  }
  CHECK(owners == std::set<std::string>{"node-0", "node-1", "node-2", "node-3"});
  CHECK(store.list("handles/" + network + "/", true).size() == st.live.size());
}

TEST_CASE("global-ipam: 8 processes x 4 nodes on one file store never share an address",
          "[global-ipam]") {
  TempDir dir("strait-gipam");
  std::string network = unique_name("gnet", 40);
  json conf = ipam_conf(network, {{"type", "file"}, {"path", dir.path()}});
  Stress st = stress(conf, 8, 250);  // 2000 addresses
  WARN("file store: 2000 ADDs + 1000 DELs by 8 processes in " << st.seconds << " s");
  ipam::FileStore store(dir.path(), std::chrono::milliseconds(5000));
  verify_stress(store, network, st, 1000);
}

TEST_CASE("global-ipam: kill -9 mid-ADD, then GC: no leak", "[global-ipam]") {
  TempDir dir("strait-gipam");
  std::string network = unique_name("gnet", 40);
  json conf = ipam_conf(network, {{"type", "file"}, {"path", dir.path()}});
  std::string input_file = dir.path() + "/../" + fs::path(dir.path()).filename().string() + ".json";
  std::ofstream(input_file) << conf.dump();
  struct Cleanup {
    std::string f;
    ~Cleanup() { fs::remove(f); }
  } cleanup{input_file};

  // c0 is valid and holds the node's first block.
  auto r = run_plugin(bin("global-ipam"), env_for("ADD", "c0", "node-a"), conf.dump());
  REQUIRE(r.exit_code == 0);
  std::string c0 = json::parse(r.out)["ips"][0]["address"];
  ipam::FileStore store(dir.path(), std::chrono::milliseconds(5000));
  auto blocks = store.list("blocks/p/");
  REQUIRE(blocks.size() == 1);

  SECTION("killed while its block write waits for the block's lock") {
    // Hold the block's lock as a competing writer would; the ADD writes its handle intent
    // and then blocks on the block. Kill it there.
    std::string lock_path = dir.path() + "/.locks/" + blocks[0].key;
    cni::UniqueFd lock(open(lock_path.c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(lock);
    REQUIRE(flock(lock.get(), LOCK_EX) == 0);
    Child child(bin("global-ipam"), env_for("ADD", "c1", "node-a"), input_file);
    std::string intent = dir.path() + "/handles/" + network + "/c1/eth0";
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!fs::exists(intent) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    REQUIRE(fs::exists(intent));
    std::this_thread::sleep_for(20ms);
    child.kill9();
    lock.reset();
    CHECK(store_allocations(store).size() == 1);  // the block never took c1
  }
  SECTION("killed at random moments") {
    for (int i = 1; i <= 20; ++i) {
      Child child(bin("global-ipam"), env_for("ADD", "k" + std::to_string(i), "node-a"),
                  input_file);
      std::this_thread::sleep_for(std::chrono::microseconds(500 * i));
      child.kill9();
    }
  }
  // GC with only c0 valid: whatever the killed ADDs left goes, c0 stays.
  json gc = conf;
  gc["cni.dev/valid-attachments"] = {{{"containerID", "c0"}, {"ifname", "eth0"}}};
  auto g = run_plugin(bin("global-ipam"), env_for("GC", "", "node-a"), gc.dump());
  INFO(g.out << g.err);
  REQUIRE(g.exit_code == 0);
  auto all = store_allocations(store);
  REQUIRE(all.size() == 1);
  CHECK(all.begin()->first == c0.substr(0, c0.find('/')));
  CHECK(all.begin()->second.handle == network + "/c0/eth0");
  auto handles = store.list("handles/" + network + "/", true);
  REQUIRE(handles.size() == 1);
  CHECK(handles[0].key == "handles/" + network + "/c0/eth0");
  // Nothing half-written: every record parses, and no temporary file is older than the run.
  for (const auto& e : store.list("")) CHECK_NOTHROW(json::parse(e.value));
  // And the node goes on allocating from its block.
  auto again = run_plugin(bin("global-ipam"), env_for("ADD", "c2", "node-a"), conf.dump());
  REQUIRE(again.exit_code == 0);
  CHECK(store_allocations(store).size() == 2);
}

TEST_CASE(
    "global-ipam as macvlan's IPAM through cnitool: the pod's address is in its node's "
    "block",
    "[global-ipam][macvlan]") {
  TempNetns host("gih");
  TempNetns peer("gip");
  TempNetns pod("gipod");
  TempDir conf_dir("strait-gipam-conf");
  TempDir store_dir("strait-gipam-store");
  TempDir cache("strait-gipam-cache");
  sh_ok("ip -n " + host.name() + " link add mst0 type veth peer name gw0 netns " + peer.name());
  sh_ok("ip -n " + host.name() + " link set mst0 up");
  sh_ok("ip -n " + peer.name() + " link set gw0 up");
  sh_ok("ip -n " + peer.name() + " addr add 198.51.100.1/24 dev gw0");
  std::string network = unique_name("ginet", 40);
  json list = {{"cniVersion", "1.1.0"},
               {"name", network},
               {"plugins",
                {{{"type", "macvlan"},
                  {"master", "mst0"},
                  {"mode", "bridge"},
                  {"ipam",
                   {{"type", "global-ipam"},
                    {"nodeName", "worker-7"},
                    {"pools",
                     {{{"name", "pods"},
                       {"cidr", "198.51.100.0/24"},
                       {"blockSize", 28},
                       {"gateway", "198.51.100.1"}}}},
                    {"routes", {{{"dst", "0.0.0.0/0"}}}},
                    {"store", {{"type", "file"}, {"path", store_dir.path()}}},
                    {"nodeLockDir", lock_dir()}}}}}}};
  std::ofstream(conf_dir.path() + "/10-" + network + ".conflist") << list.dump(2);
  cni::EnvMap env = {{"NETCONFPATH", conf_dir.path()},
                     {"CNI_PATH", STRAIT_BIN_DIR},
                     {"CNI_CACHE_DIR", cache.path()},
                     {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
  auto run = [&](const std::string& verb) {
    return cni::spawn(
        {"/usr/bin/ip", "netns", "exec", host.name(), bin("cnitool"), verb, network, pod.path()},
        env, "");
  };
  auto add = run("add");
  INFO(add.out << add.err);
  REQUIRE(add.exit_code == 0);
  json result = json::parse(add.out);
  std::string addr = result["ips"][0]["address"];
  CHECK(addr.substr(addr.find('/')) == "/24");
  std::string ip = addr.substr(0, addr.find('/'));
  // The address is configured in the pod and lies in a /28 block affine to worker-7.
  std::string shown = sh_ok("ip -n " + pod.name() + " -4 -o addr show dev eth0");
  CHECK(shown.find(addr) != std::string::npos);
  ipam::FileStore store(store_dir.path(), std::chrono::milliseconds(5000));
  auto all = store_allocations(store);
  REQUIRE(all.count(ip));
  CHECK(all.at(ip).affinity == "worker-7");
  CHECK(all.at(ip).node == "worker-7");
  auto blocks = store.list("affinity/worker-7/pods/", true);
  REQUIRE(blocks.size() == 1);
  auto block = ipam::parse_cidr_key(blocks[0].key.substr(blocks[0].key.rfind('/') + 1));
  REQUIRE(block);
  CHECK(block->prefix == 28);
  CHECK(block->contains(cni::IpAddress::parse(ip)));
  // The pod reaches the gateway on the underlay.
  CHECK(strait::test::sh("ip netns exec " + pod.name() + " busybox ping -c 1 -W 2 198.51.100.1") ==
        0);
  auto check = run("check");
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  auto del = run("del");
  INFO(del.out << del.err);
  REQUIRE(del.exit_code == 0);
  CHECK(store_allocations(store).empty());
}

// ---- etcd -------------------------------------------------------------------------------

namespace {

using strait::test::EtcdCluster;

json etcd_store(const EtcdCluster& etcd, int timeout_ms = 10000) {
  return {{"type", "etcd"},
          {"endpoints", etcd.endpoints()},
          {"prefix", "/strait-test"},
          {"timeoutMs", timeout_ms}};
}

// Every key with its revision and value: "nothing changed" compares two of these.
std::vector<std::tuple<std::string, int64_t, std::string>> snapshot(ipam::KvStore& store) {
  std::vector<std::tuple<std::string, int64_t, std::string>> out;
  for (const auto& e : store.list("")) out.emplace_back(e.key, e.revision, e.value);
  return out;
}

}  // namespace

TEST_CASE("etcd store: compare-and-swap, prefixes, paged lists", "[global-ipam][etcd]") {
  EtcdCluster etcd;
  ipam::EtcdStore s(etcd.options("/strait-a"));
  CHECK_FALSE(s.get("nodes/n1"));
  auto r1 = s.put_if("nodes/n1", "v1", 0);
  REQUIRE(r1);
  CHECK_FALSE(s.put_if("nodes/n1", "x", 0));
  CHECK(s.get("nodes/n1")->value == "v1");
  CHECK(s.get("nodes/n1")->revision == *r1);
  auto r2 = s.put_if("nodes/n1", std::string("bin\0ary\xff", 8), *r1);
  REQUIRE(r2);
  CHECK(*r2 > *r1);
  CHECK(s.get("nodes/n1")->value == std::string("bin\0ary\xff", 8));
  CHECK_FALSE(s.put_if("nodes/n1", "stale", *r1));
  CHECK_FALSE(s.erase_if("nodes/n1", *r1));
  CHECK(s.erase_if("nodes/n1", *r2));
  CHECK_FALSE(s.get("nodes/n1"));
  CHECK_FALSE(s.erase_if("nodes/n1", 0));
  // Another prefix is another store.
  ipam::EtcdStore other(etcd.options("/strait-b"));
  REQUIRE(other.put_if("nodes/n1", "b", 0));
  CHECK_FALSE(s.get("nodes/n1"));
  // More keys than a page: one sorted list.
  constexpr int kKeys = 1203;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      ipam::EtcdStore w(etcd.options("/strait-a"));
      for (int i = t; i < kKeys; i += 4) {
        char key[32];
        snprintf(key, sizeof key, "blocks/p/k%05d", i);
        w.put_if(key, "v" + std::to_string(i), 0);
      }
    });
  }
  for (auto& t : writers) t.join();
  REQUIRE(s.put_if("blocksx/q", "not under blocks/", 0));
  auto all = s.list("blocks/");
  REQUIRE(all.size() == kKeys);
  CHECK(all.front().key == "blocks/p/k00000");
  CHECK(all.back().key == "blocks/p/k01202");
  CHECK(all[700].value == "v700");
  CHECK(std::is_sorted(all.begin(), all.end(),
                       [](const auto& a, const auto& b) { return a.key < b.key; }));
  auto keys = s.list("blocks/p/", true);
  CHECK(keys.size() == kKeys);
  CHECK(keys[5].value.empty());
  CHECK(keys[5].revision > 0);
  CHECK(s.list("").size() == kKeys + 1);
  s.ping();

  // Several writes in one txn: all or nothing.
  auto a = s.put_if("handles/n/c/eth0", "h1", 0);
  REQUIRE(a);
  CHECK_FALSE(s.put_all_if({{"handles/n/c/eth0", "h2", *a}, {"blocks/p/k00001", "b2", 1}}));
  CHECK(s.get("handles/n/c/eth0")->value == "h1");  // the first write did not happen either
  auto b = s.get("blocks/p/k00001");
  auto revs =
      s.put_all_if({{"handles/n/c/eth0", "h2", *a}, {"blocks/p/k00001", "b2", b->revision}});
  REQUIRE(revs);
  REQUIRE(revs->size() == 2);
  CHECK(s.get("handles/n/c/eth0")->revision == (*revs)[0]);
  CHECK(s.get("blocks/p/k00001")->value == "b2");
  // Several reads in one txn.
  auto batch = s.read_batch({{"handles/n/c/eth0"}, {"nothing/here"}, {"blocks/p/", true, true}});
  REQUIRE(batch.size() == 3);
  REQUIRE(batch[0].size() == 1);
  CHECK(batch[0][0].value == "h2");
  CHECK(batch[1].empty());
  CHECK(batch[2].size() == kKeys);
  CHECK(batch[2][0].value.empty());
}

TEST_CASE("global-ipam: 8 processes x 4 nodes on one etcd never share an address",
          "[global-ipam][etcd]") {
  EtcdCluster etcd;
  std::string network = unique_name("gnet", 40);
  json conf = ipam_conf(network, etcd_store(etcd));
  Stress st = stress(conf, 8, 250);  // 2000 addresses
  WARN("etcd: 2000 ADDs + 1000 DELs by 8 processes in " << st.seconds << " s");
  ipam::EtcdStore store(etcd.options());
  verify_stress(store, network, st, 1000);
}

TEST_CASE("global-ipam: a 3-member etcd loses a member mid-run, clients fail over",
          "[global-ipam][etcd]") {
  EtcdCluster etcd(3);
  std::string network = unique_name("gnet", 40);
  json conf = ipam_conf(network, etcd_store(etcd));
  // The first endpoint every client tries dies halfway through.
  bool killed = false;
  Stress st = stress(conf, 8, 100, [&](int n) {
    if (n == 50 && !killed) {
      killed = true;
      etcd.stop(0, SIGKILL);
    }
  });
  CHECK(killed);
  WARN("3-member etcd, member 0 killed at half time: 800 ADDs + 400 DELs in " << st.seconds
                                                                              << " s");
  ipam::EtcdOptions o = etcd.options();
  o.endpoints = {etcd.endpoint(1), etcd.endpoint(2)};
  ipam::EtcdStore store(o);
  verify_stress(store, network, st, 400);
}

TEST_CASE("global-ipam: etcd unreachable gives code 11 within timeoutMs, nothing changed",
          "[global-ipam][etcd]") {
  EtcdCluster etcd;
  std::string network = unique_name("gnet", 40);
  json conf = ipam_conf(network, etcd_store(etcd, 1000));
  auto r = run_plugin(bin("global-ipam"), env_for("ADD", "c0", "node-a"), conf.dump());
  REQUIRE(r.exit_code == 0);
  ipam::EtcdStore store(etcd.options());
  auto before = snapshot(store);
  REQUIRE(before.size() >= 5);  // pool, node, affinity, block, handle

  auto timed_add = [&](const std::string& id) {
    auto start = std::chrono::steady_clock::now();
    auto out = run_plugin(bin("global-ipam"), env_for("ADD", id, "node-a"), conf.dump());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    return std::make_pair(out, ms);
  };
  SECTION("frozen (SIGSTOP): requests hang") {
    etcd.freeze(0);
    auto [out, ms] = timed_add("c1");
    etcd.thaw(0);
    INFO(out.out);
    CHECK(out.exit_code == 1);
    CHECK(json::parse(out.out)["code"] == 11);
    CHECK(json::parse(out.out)["msg"].get<std::string>().find("unreachable for 1000 ms") !=
          std::string::npos);
    CHECK(ms >= 1000);
    CHECK(ms < 2500);
  }
  SECTION("stopped: connections refused") {
    etcd.stop(0);
    auto [out, ms] = timed_add("c1");
    INFO(out.out);
    CHECK(out.exit_code == 1);
    CHECK(json::parse(out.out)["code"] == 11);
    CHECK(ms >= 1000);
    CHECK(ms < 2500);
    etcd.start(0);
    etcd.wait_ready();
  }
  CHECK(snapshot(store) == before);
  // And the cluster goes on.
  auto again = run_plugin(bin("global-ipam"), env_for("ADD", "c1", "node-a"), conf.dump());
  CHECK(again.exit_code == 0);
}

TEST_CASE("global-ipam: etcd with TLS client certificates", "[global-ipam][etcd]") {
  TempDir pki("strait-pki");
  const std::string d = pki.path();
  auto gen = [&](const std::string& name, const std::string& cn, const std::string& ext) {
    sh_ok("cd " + d + " && printf '" + ext + "' > " + name + ".ext && " +
          "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name +
          ".key -out " + name + ".csr -subj /CN=" + cn + " 2>/dev/null && " +
          "openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " +
          name + ".pem -days 1 -extfile " + name + ".ext 2>/dev/null");
  };
  sh_ok("cd " + d +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 1 -subj /CN=strait-test-ca 2>/dev/null");
  gen("server", "127.0.0.1",
      "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n");
  gen("client", "global-ipam", "extendedKeyUsage=clientAuth\\n");
  strait::test::EtcdTls tls{d + "/ca.pem", d + "/server.pem", d + "/server.key", d + "/client.pem",
                            d + "/client.key"};
  EtcdCluster etcd(1, &tls);
  REQUIRE(etcd.endpoint(0).rfind("https://", 0) == 0);

  ipam::EtcdOptions o = etcd.options();
  o.ca_file = tls.ca;
  o.cert_file = tls.client_cert;
  o.key_file = tls.client_key;
  ipam::EtcdStore store(o);
  REQUIRE(store.put_if("nodes/tls", "{}", 0));

  // The executable with caFile/certFile/keyFile.
  std::string network = unique_name("gnet", 40);
  json s = etcd_store(etcd);
  s["caFile"] = tls.ca;
  s["certFile"] = tls.client_cert;
  s["keyFile"] = tls.client_key;
  auto r =
      run_plugin(bin("global-ipam"), env_for("ADD", "c1", "node-a"), ipam_conf(network, s).dump());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(store.get("handles/" + network + "/c1/eth0"));

  // Without a client certificate the server refuses: code 11 after the timeout.
  json no_cert = etcd_store(etcd, 500);
  no_cert["caFile"] = tls.ca;
  auto refused = run_plugin(bin("global-ipam"), env_for("ADD", "c2", "node-a"),
                            ipam_conf(network, no_cert).dump());
  CHECK(refused.exit_code == 1);
  CHECK(json::parse(refused.out)["code"] == 11);
  // Without the CA the server's certificate is not trusted.
  ipam::EtcdOptions untrusted = o;
  untrusted.ca_file.clear();
  // Long enough for a handshake on a loaded machine (a sanitizer build, tests in parallel),
  // so that the last error is the certificate's and not a timeout.
  untrusted.timeout = std::chrono::milliseconds(2000);
  try {
    ipam::EtcdStore(untrusted).get("nodes/tls");
    FAIL("an untrusted server was accepted");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 11);
    INFO(e.msg());
    CHECK(e.msg().find("SSL") != std::string::npos);
  }
  CHECK_FALSE(store.get("handles/" + network + "/c2/eth0"));
}

TEST_CASE("global-ipam CLI on a live etcd: show, release, gc, check", "[global-ipam][etcd][cli]") {
  EtcdCluster etcd;
  std::string network = unique_name("gcli", 40);
  json conf = ipam_conf(network, etcd_store(etcd));
  for (const auto& [id, node] : std::vector<std::pair<std::string, std::string>>{
           {"c1", "node-a"}, {"c2", "node-a"}, {"c3", "node-b"}}) {
    auto r = run_plugin(bin("global-ipam"), env_for("ADD", id, node), conf.dump());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
  }
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {bin("global-ipam"), "--etcd-endpoints", etcd.endpoint(0),
                                     "--etcd-prefix", "/strait-test"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cni::spawn(argv, {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
    INFO(r.out << r.err);
    return r;
  };

  auto shown = cli({"--json", "show", "--blocks"});
  REQUIRE(shown.exit_code == 0);
  json s = json::parse(shown.out);
  REQUIRE(s["pools"].size() == 1);
  CHECK(s["pools"][0]["used"] == 3);
  std::set<std::string> nodes;
  for (const auto& b : s["blocks"]) nodes.insert(b["node"].get<std::string>());
  CHECK(nodes == std::set<std::string>{"node-a", "node-b"});

  auto rel = cli({"release", "--handle", network + "/c1/eth0"});
  REQUIRE(rel.exit_code == 0);
  CHECK(rel.out.find("released ") == 0);
  ipam::EtcdStore store(etcd.options());
  CHECK_FALSE(store.get("handles/" + network + "/c1/eth0"));

  TempDir d("strait-gcli");
  std::ofstream(d.path() + "/valid.json")
      << json::array({{{"containerID", "c3"}, {"ifname", "eth0"}}}).dump();
  auto gc = cli({"--json", "gc", "--valid", d.path() + "/valid.json", "--network", network});
  REQUIRE(gc.exit_code == 0);
  json released = json::parse(gc.out)["released"];
  REQUIRE(released.size() == 1);
  CHECK(released[0]["handle"] == network + "/c2/eth0");
  CHECK(store.get("handles/" + network + "/c3/eth0"));

  auto check = cli({"check"});
  REQUIRE(check.exit_code == 0);
  CHECK(check.out.find("no problems") != std::string::npos);
  auto after = cli({"--json", "show"});
  REQUIRE(after.exit_code == 0);
  CHECK(json::parse(after.out)["pools"][0]["used"] == 1);
}
