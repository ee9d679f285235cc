#pragma once

// A multi-node overlay lab for the vxlan and ipip tests and benchmarks, in namespaces only: an
// underlay netns with a bridge (192.0.2.1/24, TEST-NET-1), node netns attached to it by veth
// (eth0, 192.0.2.<10+i>/24, default route via 192.0.2.1, which proxy ARP for the pods'
// link-local gateway needs), optionally a second underlay subnet (a second bridge br1,
// 198.51.100.1/24, TEST-NET-2, nodes 198.51.100.<10+i>) that the underlay netns routes to the
// first (it is the router between them), pods in netns of their own attached from inside their
// node's netns through cnitool, and global-ipam on a file store shared by the nodes or on etcd
// running in the underlay netns. Everything is removed on destruction.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/fd.h"
#include "test/support/etcd_fixture.h"
#include "test/support/harness.h"

namespace strait::test {

struct OverlayLabOptions {
  int nodes = 3;
  bool etcd = false;
  bool dual_stack = true;
  int block_size_v4 = 30;  // tunnel address + 3 pods per block
  int block_size_v6 = 126;
  int max_blocks_per_node = 1;  // a node whose block is full borrows
  int underlay_mtu = 1500;
  std::string vxlan_extra;       // JSON members added to the plugin object (",\"vni\": 5")
  std::string plugin = "vxlan";  // the overlay plugin's type and executable ("ipip")
  // Nodes from this index on are on the second underlay subnet (-1: none is).
  int second_subnet_from = -1;
  std::string pool_v4 = "10.244.0.0/24";
  int store_timeout_ms = 0;          // the store's timeoutMs (0: global-ipam's default)
  std::optional<bool> nat_outgoing;  // every pool's natOutgoing (unset: the key is left out)
};

// Polls `done` every 20 ms until it holds or `timeout` passed: whether it came true (a
// readiness wait with a deadline, not an assertion on time).
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// A route agent running in the background (`vxlan sync ... --watch`, `ipip sync ...`) inside a
// node's netns, its stderr in a file. stop() signals it and returns its exit status; the destructor
// SIGKILLs one still running.
class LabAgent {
 public:
  LabAgent(const TempNetns& netns, std::vector<std::string> args, std::string log)
      : log_(std::move(log)) {
    const cni::UniqueFd ns(open(netns.path().c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) throw std::runtime_error("cannot open " + netns.path());
    pid_ = spawn_background(
        Background{std::move(args), std::nullopt, "/dev/null", log_, false, ns.get()});
  }
  ~LabAgent() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  LabAgent(const LabAgent&) = delete;
  LabAgent& operator=(const LabAgent&) = delete;

  std::string log() const { return read_file(log_); }
  // How often `text` appears in the log so far.
  size_t count(const std::string& text) const {
    const std::string l = log();
    size_t n = 0;
    for (size_t at = l.find(text); at != std::string::npos; at = l.find(text, at + 1)) ++n;
    return n;
  }
  // Sends `sig` and waits up to `timeout` for the exit: its exit code, -1 when it did not
  // exit in time (it is then killed), 128 + n when a signal n ended it.
  int stop(int sig = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    const bool done = eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    if (!done) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

struct LabPod {
  std::unique_ptr<TempNetns> ns;
  int node = 0;
  std::string v4;
  std::string v6;
  nlohmann::json result;
};

class OverlayLab {
 public:
  explicit OverlayLab(OverlayLabOptions o = {}) : opt_(std::move(o)) {
    network_ = unique_name("vxnet", 40);
    underlay_ = std::make_unique<TempNetns>("ul");
    underlay_->exec(
        "ip link add br0 type bridge && ip addr add 192.0.2.1/24 dev br0 && "
        "ip link set br0 up");
    if (opt_.second_subnet_from >= 0) {
      underlay_->exec(
          "ip link add br1 type bridge && ip addr add 198.51.100.1/24 dev br1 && "
          "ip link set br1 up && sysctl -qw net.ipv4.ip_forward=1");
    }
    for (int i = 0; i < opt_.nodes; ++i) add_node();
    if (opt_.etcd) {
      etcd_ = std::make_unique<EtcdCluster>(1, nullptr, EtcdPlace{underlay_->name(), "192.0.2.1"});
    }
    for (int i = 0; i < opt_.nodes; ++i) write_conf(i);
  }

  const std::string& network() const { return network_; }
  const TempNetns& underlay() const { return *underlay_; }
  const TempNetns& node(int i) const { return *nodes_.at(i); }
  std::string node_name(int i) const { return "node" + std::to_string(i); }
  bool second_subnet(int i) const {
    return opt_.second_subnet_from >= 0 && i >= opt_.second_subnet_from;
  }
  std::string node_address(int i) const {
    return (second_subnet(i) ? "198.51.100." : "192.0.2.") + std::to_string(10 + i);
  }
  std::string conflist(int i) const {
    return dir_.path() + "/conf" + std::to_string(i) + "/net.conflist";
  }
  std::string store_path() const { return dir_.path() + "/store"; }
  std::string lock_dir(int i) const { return dir_.path() + "/locks" + std::to_string(i); }
  bool etcd() const { return static_cast<bool>(etcd_); }
  std::vector<std::string> etcd_endpoints() const { return etcd_->endpoints(); }
  int size() const { return static_cast<int>(nodes_.size()); }

  // Adds node `size()` (its netns, veth and config) and returns its index.
  int add_node() {
    const int i = static_cast<int>(nodes_.size());
    auto ns = std::make_unique<TempNetns>("nd" + std::to_string(i));
    const std::string peer = unique_name("ulp");
    sh_ok("ip -n " + ns->name() + " link add eth0 mtu " + std::to_string(opt_.underlay_mtu) +
          " type veth peer name " + peer + " netns " + underlay_->name());
    underlay_->exec("ip link set " + peer + " mtu " + std::to_string(opt_.underlay_mtu) +
                    " master " + (second_subnet(i) ? "br1" : "br0") + " up");
    ns->exec("ip addr add " + node_address(i) +
             "/24 dev eth0 && ip link set eth0 up && "
             "ip route add default via " +
             (second_subnet(i) ? "198.51.100.1" : "192.0.2.1"));
    nodes_.push_back(std::move(ns));
    // Configs name the store, so the constructor writes the first ones once etcd runs.
    if (conf_ready_) write_conf(i);
    return i;
  }

  // The conflist of node i: the overlay plugin on global-ipam.
  nlohmann::json conf(int i) const {
    nlohmann::json store;
    if (etcd_) {
      store = {{"type", "etcd"}, {"endpoints", etcd_->endpoints()}, {"prefix", "/" + network_}};
    } else {
      store = {{"type", "file"}, {"path", store_path()}};
    }
    if (opt_.store_timeout_ms > 0) store["timeoutMs"] = opt_.store_timeout_ms;
    nlohmann::json pools = nlohmann::json::array(
        {{{"name", "v4"}, {"cidr", opt_.pool_v4}, {"blockSize", opt_.block_size_v4}}});
    if (opt_.dual_stack) {
      pools.push_back(
          {{"name", "v6"}, {"cidr", "fd00:244::/120"}, {"blockSize", opt_.block_size_v6}});
    }
    if (opt_.nat_outgoing) {
      for (auto& p : pools) p["natOutgoing"] = *opt_.nat_outgoing;
    }
    nlohmann::json plugin = {{"type", opt_.plugin},
                             {"underlayInterface", "eth0"},
                             {"ipam",
                              {{"type", "global-ipam"},
                               {"nodeName", node_name(i)},
                               {"pools", pools},
                               {"maxBlocksPerNode", opt_.max_blocks_per_node},
                               {"store", store},
                               {"nodeLockDir", lock_dir(i)}}}};
    if (!opt_.vxlan_extra.empty()) {
      plugin.update(nlohmann::json::parse("{" + opt_.vxlan_extra.substr(1) + "}"));
    }
    return {{"cniVersion", "1.0.0"}, {"name", network_}, {"plugins", {plugin}}};
  }

  // Sets every pool's natOutgoing and rewrites every node's config.
  void set_nat_outgoing(std::optional<bool> nat) {
    opt_.nat_outgoing = nat;
    for (int i = 0; i < size(); ++i) write_conf(i);
  }

  // `cnitool <verb> <network> <pod netns>` inside node i's netns; `env` goes first in its
  // environment ("CNI_ARGS=IP=10.0.0.9 "). Runs may be concurrent.
  PluginRun cnitool(int i, const std::string& verb, const std::string& pod_path,
                    const std::string& env = "") const {
    std::string out;
    const std::string cmd = "ip netns exec " + nodes_.at(i)->name() + " env " + env +
                            "NETCONFPATH=" + dir_.path() + "/conf" + std::to_string(i) +
                            " CNI_PATH=" + bin_dir() + " CNI_CACHE_DIR=" + dir_.path() + "/cache " +
                            bin("cnitool") + " " + verb + " " + network_ + " " + pod_path;
    PluginRun r;
    const std::string err = dir_.path() + "/" + unique_name("cnitool", 30) + ".err";
    r.exit_code = sh(cmd + " 2>" + err, &out);
    r.out = out;
    r.err = read_file(err);
    return r;
  }

  LabPod add_pod(int i) {
    LabPod p;
    p.node = i;
    p.ns = std::make_unique<TempNetns>("pd" + std::to_string(i));
    PluginRun r = cnitool(i, "add", p.ns->path());
    if (r.exit_code != 0) {
      throw std::runtime_error("cnitool add on node " + std::to_string(i) + " failed: " + r.out +
                               r.err);
    }
    p.result = nlohmann::json::parse(r.out);
    for (const auto& ip : p.result.at("ips")) {
      std::string a = ip.at("address").get<std::string>();
      a = a.substr(0, a.find('/'));
      (a.find(':') == std::string::npos ? p.v4 : p.v6) = a;
    }
    return p;
  }

  void del_pod(const LabPod& p) const {
    PluginRun r = cnitool(p.node, "del", p.ns->path());
    if (r.exit_code != 0) throw std::runtime_error("cnitool del failed: " + r.out + r.err);
  }

  // `<plugin> sync --config <node i's conflist> <args>` inside node i's netns; its stderr.
  std::string sync(int i, const std::string& args = "") const {
    return nodes_.at(i)->exec(bin(opt_.plugin) + " sync --config " + conflist(i) + " " + args +
                              " 2>&1");
  }
  void sync_all() const {
    for (int i = 0; i < size(); ++i) sync(i);
  }
  // `<plugin> sync --config <node i's conflist> <args>` in the background in node i's netns.
  std::unique_ptr<LabAgent> start_agent(int i, std::vector<std::string> args) const {
    args.insert(args.begin(), {bin(opt_.plugin), "sync", "--config", conflist(i)});
    return std::make_unique<LabAgent>(*nodes_.at(i), std::move(args),
                                      dir_.path() + "/" + unique_name("agent", 30) + ".log");
  }
  EtcdCluster& etcd_cluster() const { return *etcd_; }

  static std::string bin_dir() {
    std::string b = bin("vxlan");
    return b.substr(0, b.rfind('/'));
  }

 private:
  void write_conf(int i) {
    sh_ok("mkdir -p " + dir_.path() + "/conf" + std::to_string(i));
    std::ofstream(conflist(i)) << conf(i).dump(2);
    conf_ready_ = true;
  }

  OverlayLabOptions opt_;
  TempDir dir_{"strait-vxlan-lab"};
  std::string network_;
  std::unique_ptr<TempNetns> underlay_;
  std::vector<std::unique_ptr<TempNetns>> nodes_;
  std::unique_ptr<EtcdCluster> etcd_;
  bool conf_ready_ = false;
};

}  // namespace strait::test
