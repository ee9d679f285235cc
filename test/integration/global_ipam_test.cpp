// global-ipam run for real: many processes of the executable on several simulated nodes
// against one store, processes killed mid-ADD, and a pod that gets its address from its
// node's block through cnitool and macvlan. Stores live in temp directories; the pod test's
// namespaces are made here and every address is TEST-NET.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
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
#include <sstream>
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
#include "ipam/global/http_client.h"
#include "ipam/global/records.h"
#include "libcni/core/error.h"
#include "libcni/core/fd.h"
#include "libcni/process/invoke.h"
#include "test/support/etcd_fixture.h"
#include "test/support/harness.h"
#include "test/support/loopback.h"

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

// A process started in the background (fork + exec) so the test can watch and kill it:
// `argv` with exactly `env`, stdin from `input_file` (or /dev/null), stdout and stderr to
// `output_file` (or /dev/null).
class Child {
 public:
  Child(const std::vector<std::string>& argv, const cni::EnvMap& env,
        const std::string& input_file = "/dev/null", const std::string& output_file = "/dev/null") {
    std::vector<std::string> envs;
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<std::string> args = argv;
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int in = open(input_file.c_str(), O_RDONLY);
      int out = open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (in < 0 || out < 0) _exit(127);
      dup2(in, 0);
      dup2(out, 1);
      dup2(out, 2);
      std::vector<char*> envp;
      for (auto& e : envs) envp.push_back(e.data());
      envp.push_back(nullptr);
      std::vector<char*> cargv;
      for (auto& a : args) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execve(cargv[0], cargv.data(), envp.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) kill9();
  }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  // Whether the process has `path` open (one of /proc/<pid>/fd/* links to it).
  bool has_open(const std::string& path) const {
    std::error_code ec;
    for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/fd", ec)) {
      if (fs::read_symlink(fd.path(), ec) == path) return true;
    }
    return false;
  }
  void kill9() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Waits for the exit; the exit status (128 + signal when killed by one).
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

// Polls `done` every 5 ms for at most 10 s: whether it became true (a readiness wait, not an
// assertion on time).
bool eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Every key of the store with its revision.
std::map<std::string, int64_t> revisions(ipam::KvStore& store) {
  std::map<std::string, int64_t> out;
  for (const auto& e : store.list("", true)) out[e.key] = e.revision;
  return out;
}

// The keys written (added or changed) between two revisions() of a store.
std::vector<std::string> written_since(const std::map<std::string, int64_t>& before,
                                       const std::map<std::string, int64_t>& after) {
  std::vector<std::string> out;
  for (const auto& [key, rev] : after) {
    auto it = before.find(key);
    if (it == before.end() || it->second != rev) out.push_back(key);
  }
  return out;
}

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
    std::string lock_path = store.lock_file(blocks[0].key);
    cni::UniqueFd lock(open(lock_path.c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(lock);
    REQUIRE(flock(lock.get(), LOCK_EX) == 0);
    Child child({bin("global-ipam")}, env_for("ADD", "c1", "node-a"), input_file);
    // Where it is, observed: its handle intent is written and it has the block's lock file
    // open, which we hold, so it is waiting for that lock (the store opens a key's lock file
    // only to lock it, and the intent is written before the block).
    std::string intent = dir.path() + "/handles/" + network + "/c1/eth0";
    REQUIRE(eventually([&] { return fs::exists(intent) && child.has_open(lock_path); }));
    REQUIRE(child.running());
    child.kill9();
    lock.reset();
    CHECK(store_allocations(store).size() == 1);  // the block never took c1
  }
  SECTION("killed on entry to each of its renames") {
    // strace kills the ADD when it enters its k-th rename, then its k-th renameat2 (the store's
    // writes land with a rename, a new key's, one into a directory not there yet failing and
    // retried once it is made, or with an exchange, an existing key's: the block), for k = 1,
    // 2, ... until an ADD has fewer of them and completes. What each kill left is observed:
    // nothing, or the handle intent alone; never the block without its intent.
    std::set<std::string> states;
    int n = 0;
    for (const std::string syscall : {"rename", "renameat2"}) {
      for (int k = 1;; ++k) {
        REQUIRE(k <= 20);
        std::string id = "k" + std::to_string(++n);
        std::string intent = "handles/" + network + "/" + id + "/eth0";
        auto before = revisions(store);
        cni::EnvMap env = env_for("ADD", id, "node-a");
        env["ASAN_OPTIONS"] = "detect_leaks=0";  // LeakSanitizer cannot run under ptrace
        Child child(
            {"/usr/bin/strace", "-o", "/dev/null", "-e", "trace=" + syscall, "-e",
             "inject=" + syscall + ":signal=KILL:when=" + std::to_string(k), bin("global-ipam")},
            env, input_file);
        int status = child.wait();
        auto written = written_since(before, revisions(store));
        INFO("kill on entry to " << syscall << " #" << k << ", exit status " << status);
        CAPTURE(written);
        if (status == 0) {  // no k-th call: the ADD ran to its end, intent and block written
          CHECK(written.size() == 2);
          break;
        }
        REQUIRE(status == 137);  // strace passes on the tracee's SIGKILL as 128 + 9
        if (written.empty()) {
          states.insert(syscall + ": nothing");
        } else {
          REQUIRE(written == std::vector<std::string>{intent});
          states.insert(syscall + ": intent only");
        }
      }
    }
    // The handle's renames come first (nothing written yet), the block's exchange last.
    CHECK(states == std::set<std::string>{"rename: nothing", "renameat2: intent only"});
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
  // Nothing half-written: every record parses; and no temporary file is left (what the killed
  // writers were writing was removed by the next process that opened the store, the GC: its
  // writer was dead). The store's listing skips .tmp/, so look at the directory itself.
  for (const auto& e : store.list("")) CHECK_NOTHROW(json::parse(e.value));
  for (const auto& f : fs::directory_iterator(dir.path() + "/.tmp")) {
    FAIL_CHECK("temporary file left: " << f.path());
  }
  // And the node goes on allocating from its block.
  auto again = run_plugin(bin("global-ipam"), env_for("ADD", "c2", "node-a"), conf.dump());
  REQUIRE(again.exit_code == 0);
  CHECK(store_allocations(store).size() == 2);
}

// The process's state letter in /proc/<pid>/stat ('t': stopped under a tracer).
char proc_state(pid_t pid) {
  std::string stat = strait::test::read_file("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// The children of `pid` (its first thread's).
std::vector<pid_t> children_of(pid_t pid) {
  std::istringstream in(strait::test::read_file("/proc/" + std::to_string(pid) + "/task/" +
                                                std::to_string(pid) + "/children"));
  std::vector<pid_t> out;
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

TEST_CASE("file store: a writer whose temporary file is removed before its rename writes again",
          "[global-ipam]") {
  TempDir dir("strait-gipam");
  TempDir twin("strait-gipam-twin");
  // .tmp/ and nodes/ exist, so the next process's writes are its temporary file's data (then,
  // on a file system the store syncs, its fsync, and the rename).
  for (const auto* d : {&dir, &twin}) {
    ipam::FileStore s(d->path(), std::chrono::milliseconds(5000));
    REQUIRE(s.put_if("nodes/n0", ipam::records::NodeRecord{"n0", {}, {}}.to_json().dump(), 0));
  }
  std::string log = dir.path() + "/../" + fs::path(dir.path()).filename().string() + ".out";
  std::string trace = log + ".trace";
  struct Cleanup {
    std::vector<std::string> f;
    ~Cleanup() {
      for (const auto& p : f) fs::remove(p);
    }
  } cleanup{{log, trace}};
  const cni::EnvMap env = {
      {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"},
      {"ASAN_OPTIONS", "detect_leaks=0"}};  // LeakSanitizer cannot run under ptrace
  // Which write() is the temporary file's: a dry run of the same command on the twin store,
  // with the paths of the fds (-y). A sanitizer runtime may write before the store does.
  {
    Child dry({"/usr/bin/strace", "-o", trace, "-y", "-e", "trace=write", bin("global-ipam"),
               "--store-path", twin.path(), "set-node", "n1", "--address", "198.51.100.9"},
              env);
    REQUIRE(dry.wait() == 0);
  }
  int ordinal = 0;
  {
    std::istringstream lines(strait::test::read_file(trace));
    int n = 0;
    for (std::string l; std::getline(lines, l);) {
      if (l.rfind("write(", 0) != 0) continue;
      ++n;
      if (l.find("/.tmp/") != std::string::npos) {
        ordinal = n;
        break;
      }
    }
  }
  INFO(strait::test::read_file(trace));
  REQUIRE(ordinal > 0);
  // set-node under strace, stopped (SIGSTOP) on return from that write: its temporary file is
  // written, and the rename into nodes/n1 has not happened.
  Child strace({"/usr/bin/strace", "-o", "/dev/null", "-e", "trace=write", "-e",
                "inject=write:signal=STOP:when=" + std::to_string(ordinal), bin("global-ipam"),
                "--store-path", dir.path(), "set-node", "n1", "--address", "198.51.100.9"},
               env, "/dev/null", log);
  pid_t writer = 0;
  // Every ptrace stop (the exec event, each system call strace sees) also reads 't' for a
  // moment. Stopped for good: its temporary file exists and it stays 't' over 50 reads 5 ms
  // apart (a passing stop lasts microseconds: strace resumes it at once).
  auto stopped_for_good = [&] {
    for (int i = 0; i < 50; ++i) {
      if (proc_state(writer) != 't') return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  };
  REQUIRE(eventually([&] {
    auto c = children_of(strace.pid());
    writer = c.empty() ? 0 : c[0];
    return writer && proc_state(writer) == 't' && !fs::is_empty(dir.path() + "/.tmp") &&
           stopped_for_good();
  }));
  std::vector<fs::path> tmp;
  for (const auto& f : fs::directory_iterator(dir.path() + "/.tmp")) tmp.push_back(f.path());
  REQUIRE(tmp.size() == 1);
  REQUIRE_FALSE(fs::exists(dir.path() + "/nodes/n1"));
  // Removed by something that is not the store (an operator's rm; a sweep would leave it,
  // since its writer holds its lock).
  REQUIRE(fs::remove(tmp[0]));
  REQUIRE(kill(writer, SIGCONT) == 0);
  int status = strace.wait();
  INFO(strait::test::read_file(log));
  // It noticed that its temporary file, not the key's directory, went away, and wrote again.
  CHECK(status == 0);
  ipam::FileStore store(dir.path(), std::chrono::milliseconds(5000));
  auto n1 = store.get("nodes/n1");
  REQUIRE(n1);
  CHECK(json::parse(n1->value)["address"] == "198.51.100.9");
  CHECK(fs::is_empty(dir.path() + "/.tmp"));
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

// Pool selection per pod through cnitool, as containerd and CRI-O drive it: the pod's
// annotations come in CAP_ARGS and reach the plugin (runtimeConfig) only for a network that
// declares the capability; args.cni.pools comes from the config (cnitool users, multus
// cni-args); the namespace from CNI_ARGS. A refused ADD leaves nothing in the store.
TEST_CASE("global-ipam pool selection through cnitool: annotations in CAP_ARGS, args.cni.pools",
          "[global-ipam][pools]") {
  TempNetns pod("gisel");
  TempDir conf_dir("strait-gisel-conf");
  TempDir store_dir("strait-gisel-store");
  TempDir cache("strait-gisel-cache");
  json ipam = {{"type", "global-ipam"},
               {"nodeName", "sel-node"},
               {"pools",
                {{{"name", "team"}, {"cidr", "10.132.0.0/24"}, {"namespaceSelector", "team-*"}},
                 {{"name", "default"}, {"cidr", "10.130.0.0/24"}},
                 {{"name", "special"}, {"cidr", "10.131.0.0/24"}},
                 {{"name", "v6"}, {"cidr", "fd00:130::/64"}}}},
               {"store", {{"type", "file"}, {"path", store_dir.path()}}},
               {"nodeLockDir", lock_dir()}};
  // A network per way of naming pools, one plugin each.
  auto network = [&](const std::string& tag, json plugin) {
    std::string name = unique_name("gisel-" + tag, 40);
    plugin["type"] = "global-ipam";
    plugin["ipam"] = ipam;
    json list = {{"cniVersion", "1.1.0"}, {"name", name}, {"plugins", {plugin}}};
    std::ofstream(conf_dir.path() + "/10-" + name + ".conflist") << list.dump(2);
    return name;
  };
  const json capability = {{"io.kubernetes.cri.pod-annotations", true}};
  const std::string annotated = network("ann", {{"capabilities", capability}});
  const std::string undeclared = network("nocap", json::object());
  const std::string by_args = network(
      "args", {{"capabilities", capability}, {"args", {{"cni", {{"pools", {"special"}}}}}}});
  auto cap_args = [](const std::string& v4pools) {
    return json{{"io.kubernetes.cri.pod-annotations",
                 {{"strait.io/ipv4pools", v4pools}, {"other.io/key", "x"}}}}
        .dump();
  };
  auto run = [&](const std::string& verb, const std::string& net, const std::string& ns,
                 const std::string& caps) {
    cni::EnvMap env = {{"NETCONFPATH", conf_dir.path()},
                       {"CNI_PATH", STRAIT_BIN_DIR},
                       {"CNI_CACHE_DIR", cache.path()},
                       {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + ns + ";K8S_POD_NAME=p"},
                       {"CAP_ARGS", caps},
                       {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
    return cni::spawn({bin("cnitool"), verb, net, pod.path()}, env, "");
  };
  // The IPv4 address an ADD got (its pool's prefix), after checking the IPv6 one.
  auto add_v4 = [&](const std::string& net, const std::string& ns, const std::string& caps) {
    auto r = run("add", net, ns, caps);
    INFO(net << " " << ns << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    json res = json::parse(r.out);
    REQUIRE(res["ips"].size() == 2);
    // Only IPv4 pools named: IPv6 comes from the config's pools, as Calico does.
    CHECK(res["ips"][1]["address"].get<std::string>().rfind("fd00:130:", 0) == 0);
    auto check = run("check", net, ns, caps);
    INFO("check: " << check.out << check.err);
    CHECK(check.exit_code == 0);
    std::string a = res["ips"][0]["address"];
    return a.substr(0, a.rfind('.'));
  };
  ipam::FileStore store(store_dir.path(), std::chrono::milliseconds(5000));

  // Pools of a family are alternatives, this node's blocks of all of them before a new block:
  // each section's first ADD claims a block of the first pool it may use, and the second one
  // would take an address of that block unless the pod's choice excludes its pool.
  SECTION("the annotation picks the pool; without the capability it is not sent") {
    CHECK(add_v4(undeclared, "default", cap_args(R"(["special"])")) == "10.130.0");
    CHECK(add_v4(annotated, "default", cap_args(R"(["special"])")) == "10.131.0");
    CHECK(store_allocations(store).size() == 4);
    for (const auto& net : {annotated, undeclared}) {
      auto del = run("del", net, "default", cap_args(R"(["special"])"));
      INFO(del.out << del.err);
      CHECK(del.exit_code == 0);
    }
  }
  SECTION("args.cni.pools beats the annotation; namespaceSelector picks among the rest") {
    CHECK(add_v4(annotated, "team-a", "{}") == "10.132.0");  // team selects team-a, first
    CHECK(add_v4(by_args, "team-a", cap_args(R"(["team"])")) == "10.131.0");
    for (const auto& net : {by_args, annotated}) {
      CHECK(run("del", net, "team-a", "{}").exit_code == 0);
    }
  }
  SECTION("a pool the pod may not have: code 7 naming it, nothing allocated or cached") {
    for (const auto& [ns, pools, why] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"default", R"(["team"])", "does not select namespace \"default\""},
             {"default", R"(["gone"])",
              "pool \"gone\" (annotation strait.io/ipv4pools) does not "
              "exist"},
             {"default", "[team", "is not a JSON list of pool names"}}) {
      auto r = run("add", annotated, ns, cap_args(pools));
      INFO(r.out << r.err);
      CHECK(r.exit_code != 0);
      // cnitool prints the plugin's msg (the code is the unit and hostile tests' business).
      CHECK(r.err.find("failed (add): invalid config: ") != std::string::npos);
      CHECK(r.err.find(why) != std::string::npos);
      CHECK(run("del", annotated, ns, cap_args(pools)).exit_code == 0);  // as a runtime does
    }
    CHECK_FALSE(fs::exists(store_dir.path() + "/handles"));
  }
  CHECK(store_allocations(store).empty());
  CHECK((!fs::exists(cache.path() + "/results") || fs::is_empty(cache.path() + "/results")));
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

// An HTTP relay in front of one etcd member (threads of this test on 127.0.0.1): it forwards
// each request and its answer, except that while hold_writes() is on it keeps every write
// txn (a body with "request_put") unanswered and unsent, as a frozen member keeps a request
// unread in its socket; release() then sends them to etcd, as that member does when it
// wakes, after the client has given up. Requests arrive with Content-Length bodies (our
// client); answers go back with Content-Length.
class HoldingRelay {
 public:
  explicit HoldingRelay(std::string upstream) : upstream_(std::move(upstream)) {
    auto l = strait::test::listen_loopback(16);
    fd_ = std::move(l.fd);
    port_ = l.port;
    accepter_ = std::thread([this] {
      for (;;) {
        int c = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        std::lock_guard lock(mu_);
        conns_.emplace_back([this, c] { serve(cni::UniqueFd(c)); });
      }
    });
  }
  ~HoldingRelay() {
    shutdown(fd_.get(), SHUT_RDWR);
    accepter_.join();
    for (auto& t : conns_) t.join();  // each ends when its client (an exited plugin) closed
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void hold_writes(bool on) { hold_ = on; }
  size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  // Sends the held requests to etcd, in order; their answers.
  std::vector<json> release() {
    std::vector<std::pair<std::string, std::string>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    std::vector<json> out;
    for (const auto& [path, body] : held) out.push_back(json::parse(forward(path, body).body));
    return out;
  }

 private:
  ipam::HttpResponse forward(const std::string& path, const std::string& body) {
    ipam::HttpConnection up(ipam::HttpUrl::parse(upstream_), {});
    return up.post(path, body, std::chrono::steady_clock::now() + std::chrono::seconds(10),
                   std::chrono::seconds(1));
  }
  void serve(cni::UniqueFd fd) {
    std::string in;
    char buf[4096];
    for (;;) {
      size_t end = in.find("\r\n\r\n");
      size_t cl = in.find("Content-Length: ");
      if (end != std::string::npos && cl != std::string::npos && cl < end) {
        size_t n = std::stoul(in.substr(cl + 16));
        if (in.size() >= end + 4 + n) {
          std::string head = in.substr(0, end);
          std::string body = in.substr(end + 4, n);
          in.erase(0, end + 4 + n);
          std::string path = head.substr(head.find(' ') + 1);
          path = path.substr(0, path.find(' '));
          if (hold_ && body.find("request_put") != std::string::npos) {
            std::lock_guard lock(mu_);
            held_.emplace_back(path, body);
            continue;  // no answer: the client waits until it gives up
          }
          auto r = forward(path, body);
          std::string answer = "HTTP/1.1 " + std::to_string(r.status) +
                               " X\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
          if (write(fd.get(), answer.data(), answer.size()) !=
              static_cast<ssize_t>(answer.size())) {
            return;
          }
          continue;
        }
      }
      ssize_t got = read(fd.get(), buf, sizeof buf);
      if (got <= 0) return;
      in.append(buf, static_cast<size_t>(got));
    }
  }

  std::string upstream_;
  cni::UniqueFd fd_;
  int port_ = 0;
  std::atomic<bool> hold_{false};
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> held_;
  std::thread accepter_;
  std::vector<std::thread> conns_;
};

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

TEST_CASE("etcd store: one txn writes (and deletes) all or else reads", "[global-ipam][etcd]") {
  EtcdCluster etcd;
  ipam::EtcdStore s(etcd.options("/strait-txn"));
  auto a = s.put_if("blocks/p/a", "a1", 0);
  auto h = s.put_if("handles/n/c/eth0", "h1", 0);
  REQUIRE(a);
  REQUIRE(h);
  CHECK(s.transactions());
  // A comparison fails: nothing is written, and the reads come back with the refusal.
  auto refused =
      s.put_all_if_or_read({{"blocks/p/a", "a2", *a}, {"handles/n/c/eth0", "", *h + 1000, true}},
                           {{"blocks/p/a"}, {"handles/", true, false}, {"none/x"}});
  CHECK_FALSE(refused.revisions);
  REQUIRE(refused.reads.size() == 3);
  REQUIRE(refused.reads[0].size() == 1);
  CHECK(refused.reads[0][0].value == "a1");
  CHECK(refused.reads[1][0].value == "h1");
  CHECK(refused.reads[2].empty());
  // All comparisons hold: a put and a delete in one txn.
  auto done = s.put_all_if_or_read({{"blocks/p/a", "a2", *a}, {"handles/n/c/eth0", "", *h, true}},
                                   {{"blocks/p/a"}});
  REQUIRE(done.revisions);
  CHECK(done.reads.empty());
  CHECK((*done.revisions)[0] == s.get("blocks/p/a")->revision);
  CHECK((*done.revisions)[1] == 0);
  CHECK(s.get("blocks/p/a")->value == "a2");
  CHECK_FALSE(s.get("handles/n/c/eth0"));
  // Deleting what is not there never succeeds.
  CHECK_FALSE(s.put_all_if({{"handles/n/c/eth0", "", 0, true}}));
}

TEST_CASE("global-ipam on etcd: blocks an earlier version wrote verbose still work",
          "[global-ipam][etcd]") {
  EtcdCluster etcd;
  std::string network = unique_name("gnet", 40);
  json conf = ipam_conf(network, etcd_store(etcd));
  auto add = [&](const std::string& id) {
    auto r = run_plugin(bin("global-ipam"), env_for("ADD", id, "node-a"), conf.dump());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out)["ips"][0]["address"].get<std::string>();
  };
  std::string a1 = add("c1");
  std::string a2 = add("c2");
  ipam::EtcdStore store(etcd.options());
  auto blocks = store.list("blocks/");
  REQUIRE(blocks.size() == 1);
  const std::string key = blocks[0].key;
  CHECK(json::parse(blocks[0].value).contains("v"));  // written compact
  // The block as the version before the compact form wrote it; node-a's cache beside its
  // lock still holds the compact one (stale now).
  ipam::Block b = ipam::Block::decode(blocks[0].value);
  REQUIRE(store.put_if(key, b.to_json().dump(), blocks[0].revision));
  std::string a3 = add("c3");
  CHECK(std::set<std::string>{a1, a2, a3}.size() == 3);
  auto held = store_allocations(store);
  CHECK(held.size() == 3);
  CHECK(json::parse(store.get(key)->value).contains("v"));  // rewritten compact
  // Verbose again, then DEL of what it held: released.
  auto e = store.get(key);
  REQUIRE(store.put_if(key, ipam::Block::decode(e->value).to_json().dump(), e->revision));
  auto del = run_plugin(bin("global-ipam"), env_for("DEL", "c1", "node-a"), conf.dump());
  INFO(del.out << del.err);
  CHECK(del.exit_code == 0);
  held = store_allocations(store);
  CHECK(held.size() == 2);
  CHECK_FALSE(held.count(a1.substr(0, a1.find('/'))));
  CHECK(held.count(a3.substr(0, a3.find('/'))));
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
    // The ADD's request may still sit unread in the frozen member's socket (its first
    // request can be the write of one transaction): a member that wakes would read it and
    // might apply it after the client gave up. What this test proves is that nothing was
    // committed before the timeout, so the member is crashed while frozen (the queued request
    // dies with its connection; what etcd committed is in its WAL) and started again.
    etcd.stop(0, SIGKILL);
    etcd.start(0);
    etcd.wait_ready();
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

TEST_CASE(
    "global-ipam: an ADD's write applied after the client answered code 11 is undone by "
    "the runtime's DEL",
    "[global-ipam][etcd]") {
  // A frozen member that wakes applies the one write txn an ADD sent it before the client
  // gave up (its first request, when the node's cache predicted the block). Accepted and
  // documented (README, "etcd member frozen"): the address stays held by the failed ADD's
  // handle, named by its record, until the DEL a runtime sends after a failed ADD (or GC).
  // Here the relay holds the write and applies it after the answer, deterministically.
  EtcdCluster etcd;
  HoldingRelay relay(etcd.endpoint(0));
  std::string network = unique_name("gnet", 40);
  json store_conf = {{"type", "etcd"},
                     {"endpoints", {relay.url()}},
                     {"prefix", "/strait-test"},
                     {"timeoutMs", 1000}};
  json conf = ipam_conf(network, store_conf);
  auto add = [&](const std::string& id) {
    return run_plugin(bin("global-ipam"), env_for("ADD", id, "node-a"), conf.dump());
  };
  auto first = add("c0");  // claims the block; the node's cache now predicts it
  REQUIRE(first.exit_code == 0);
  std::string ip0 = json::parse(first.out)["ips"][0]["address"];
  ipam::EtcdStore store(etcd.options());
  auto before = snapshot(store);

  relay.hold_writes(true);
  auto failed = add("c1");
  INFO(failed.out);
  CHECK(failed.exit_code == 1);
  CHECK(json::parse(failed.out)["code"] == 11);
  REQUIRE(relay.held() >= 1);
  CHECK(snapshot(store) == before);  // nothing committed while the client waited
  relay.hold_writes(false);
  // The member wakes: the write lands after the client answered.
  auto answers = relay.release();
  REQUIRE(answers[0].value("succeeded", false));
  auto late = store_allocations(store);
  std::string ip1;
  for (const auto& [ip, a] : late) {
    if (a.handle == network + "/c1/eth0") ip1 = ip;
  }
  REQUIRE_FALSE(ip1.empty());                             // held by the failed ADD's handle...
  REQUIRE(store.get("handles/" + network + "/c1/eth0"));  // ...which its record names

  // Meanwhile nobody else gets it: the cache's prediction is stale now and refused.
  auto next = add("c2");
  REQUIRE(next.exit_code == 0);
  std::string ip2 = json::parse(next.out)["ips"][0]["address"];
  CHECK(ip2 != ip0);
  CHECK(ip2.substr(0, ip2.find('/')) != ip1);
  // The runtime's DEL after the failed ADD releases it.
  auto del = run_plugin(bin("global-ipam"), env_for("DEL", "c1", "node-a"), conf.dump());
  CHECK(del.exit_code == 0);
  auto after = store_allocations(store);
  CHECK(after.size() == 2);
  CHECK_FALSE(after.count(ip1));
  CHECK_FALSE(store.get("handles/" + network + "/c1/eth0"));
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
