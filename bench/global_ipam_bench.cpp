// global-ipam-bench: allocation throughput and latency of global-ipam on etcd, and the cost of
// claiming a block in an empty pool and in a pool with 10,000 blocks.
//
//  1. In-process allocations: C client threads (1, 8, 32), each with its own EtcdStore (one
//     keep-alive connection, as one CNI exec has), allocate A addresses for handles spread
//     over N node names (10, 100); every allocation builds a BlockAllocator, as an ADD does.
//     Each (N, C) runs under its own key prefix, so each starts from an empty pool.
//  2. Block claims: the first allocation of a new node (it claims a block) in an empty pool
//     and in a pool prefilled with 10,000 blocks of other nodes, interleaved one by one.
//  3. Through the executable: the real `global-ipam` ADD, exec'd like a runtime does, with 1
//     and 8 concurrent clients, on etcd and on the file store.
//
// It starts its own etcd (Debian's etcd-server) on 127.0.0.1 with free ports and a temp data
// directory unless --etcd-endpoints is given, and removes it at exit. Nothing but loopback.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/config.h"
#include "ipam/global/etcd_store.h"
#include "ipam/global/node_lock.h"
#include "ipam/global/records.h"
#include "libcni/process/invoke.h"
#include "test/support/etcd_fixture.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  auto lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::vector<ipam::PoolConfig> pools(const char* cidr) {
  return ipam::parse_global_ipam({{"pools", {{{"name", "p"}, {"cidr", cidr}}}}, {"nodeName", "x"}},
                                 "ipam", {})
      .pools;
}

ipam::EtcdOptions store_options(const std::string& endpoint, const std::string& prefix) {
  ipam::EtcdOptions o;
  o.endpoints = {endpoint};
  o.prefix = prefix;
  o.timeout = std::chrono::seconds(30);
  return o;
}

struct Row {
  std::string name;
  size_t n = 0;
  double per_sec = 0;
  double p50 = 0;
  double p99 = 0;
  int errors = 0;
};

void print(const std::vector<Row>& rows, const char* title) {
  std::printf(
      "\n%s\n\n| run | n | allocations/s | p50 ms | p99 ms | errors |\n"
      "|---|--:|--:|--:|--:|--:|\n",
      title);
  for (const auto& r : rows) {
    std::printf("| %s | %zu | %.0f | %.2f | %.2f | %d |\n", r.name.c_str(), r.n, r.per_sec, r.p50,
                r.p99, r.errors);
  }
  std::fflush(stdout);
}

// Runs operations 0..ops-1 on `clients` threads (thread t takes t, t+clients, ...) and times
// each. make_op(t) is called on thread t and returns its op(k): true on success; on failure it
// returns false after describing the error in `why` (the first failure is printed).
template <class MakeOp>
Row run_clients(const std::string& name, int clients, int ops, MakeOp make_op) {
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<int> errors{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto op = make_op(t);
      std::vector<double> mine;
      for (int k = t; k < ops; k += clients) {
        std::string why;
        auto t0 = Clock::now();
        if (op(k, why)) {
          mine.push_back(ms_since(t0));
        } else if (errors++ == 0) {
          std::cerr << name << ": operation failed: " << why << "\n";
        }
      }
      std::lock_guard lock(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  double secs = ms_since(start) / 1000;
  return {name + ", " + std::to_string(clients) + " clients",
          lat.size(),
          static_cast<double>(lat.size()) / secs,
          quantile(lat, 0.5),
          quantile(lat, 0.99),
          errors.load()};
}

Row in_process(const std::string& endpoint, const std::string& prefix, int nodes, int clients,
               int allocs, const std::string& lock_dir) {
  auto cfg = pools("10.0.0.0/12");
  return run_clients(std::to_string(nodes) + " nodes", clients, allocs, [&](int) {
    // One store per client: one keep-alive connection, as one CNI exec has.
    auto store = std::make_shared<ipam::EtcdStore>(store_options(endpoint, prefix));
    return [&, store](int k, std::string& why) {
      ipam::AllocatorOptions o;
      o.node = "node-" + std::to_string(k % nodes);
      try {
        // As an ADD does: this node's single-flight lock, then the allocator.
        auto lock = ipam::NodeLock::acquire(lock_dir, o.node, std::chrono::seconds(10));
        ipam::BlockAllocator a(cfg, *store, o);
        a.assign(ipam::records::Handle{"bench", "c" + std::to_string(k), "eth0"}, {});
        return true;
      } catch (const std::exception& e) {
        why = e.what();
        return false;
      }
    };
  });
}

// Writes `count` blocks of other nodes into `prefix` (as claims would have).
void prefill(const std::string& endpoint, const std::string& prefix, int count) {
  auto cfg = pools("10.0.0.0/10");
  const auto& layout = cfg[0].layout;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      ipam::EtcdStore store(store_options(endpoint, prefix));
      for (int i = next++; i < count; i = next++) {
        // Spread like real claims: each filler node's first probe.
        std::string node = "filler-" + std::to_string(i);
        uint64_t h = ipam::node_pool_hash(node, "p");
        for (cni::Uint128 k = 0;; ++k) {
          ipam::Block b;
          b.cidr = layout.block(layout.probe(h, k));
          b.pool = "p";
          b.affinity = node;
          b.assign(1, "bench/filler" + std::to_string(i) + "/eth0", node);
          if (store.put_if(ipam::records::block_key("p", b.cidr), b.to_json().dump(), 0)) {
            store.put_if(ipam::records::affinity_key(node, "p", b.cidr), "{}", 0);
            break;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

std::pair<Row, Row> claims(const std::string& endpoint, int fill, int count) {
  auto cfg = pools("10.0.0.0/10");  // 131072 blocks of /27
  std::string empty_prefix = "/bench-claim-empty";
  std::string full_prefix = "/bench-claim-full";
  auto t0 = Clock::now();
  prefill(endpoint, full_prefix, fill);
  std::fprintf(stderr, "prefilled %d blocks in %.1f s\n", fill, ms_since(t0) / 1000);
  ipam::EtcdStore empty(store_options(endpoint, empty_prefix));
  ipam::EtcdStore full(store_options(endpoint, full_prefix));
  std::vector<double> lat_empty;
  std::vector<double> lat_full;
  auto one = [&](ipam::EtcdStore& store, std::vector<double>& lat, int i) {
    ipam::AllocatorOptions o;
    o.node = "claimer-" + std::to_string(i);
    auto start = Clock::now();
    ipam::BlockAllocator a(cfg, store, o);
    auto got = a.assign(ipam::records::Handle{"bench", "claim" + std::to_string(i), "eth0"}, {});
    lat.push_back(ms_since(start));
    if (got.empty() || got[0].block_affinity != o.node) throw std::runtime_error("no claim");
  };
  for (int i = 0; i < count; ++i) {
    // Alternate which goes first, so load changes hit both alike.
    if (i % 2 == 0) {
      one(empty, lat_empty, i);
      one(full, lat_full, i);
    } else {
      one(full, lat_full, i);
      one(empty, lat_empty, i);
    }
  }
  auto row = [&](const std::string& name, std::vector<double>& lat) {
    return Row{name, lat.size(), 0, quantile(lat, 0.5), quantile(lat, 0.99), 0};
  };
  return {row("claim, 0 existing blocks", lat_empty),
          row("claim, " + std::to_string(fill) + " existing blocks", lat_full)};
}

// ADDs of `ipam` (an IPAM config) through the executable, exec'd as a runtime does; the
// allocations spread over 10 node names.
Row through_exec(const std::string& binary, const json& ipam, int clients, int allocs,
                 const std::string& name) {
  json conf = {{"cniVersion", "1.0.0"}, {"name", "benchexec"}, {"type", "bench"}, {"ipam", ipam}};
  std::string input = conf.dump();
  return run_clients(name, clients, allocs, [&](int) {
    return [&](int k, std::string& why) {
      cni::EnvMap env = {{"CNI_COMMAND", "ADD"},
                         {"CNI_CONTAINERID", "x" + std::to_string(k)},
                         {"CNI_NETNS", "/run/netns/unused"},
                         {"CNI_IFNAME", "eth0"},
                         {"CNI_PATH", "/nonexistent"},
                         {"K8S_NODE_NAME", "node-" + std::to_string(k % 10)}};
      auto r = cni::spawn({binary}, env, input);
      why = r.out + r.err;
      return r.exit_code == 0;
    };
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"global-ipam-bench: global-ipam allocations and block claims on etcd"};
  std::string endpoint;
  int allocs = 2000;
  std::vector<int> clients = {1, 8, 32};
  std::vector<int> nodes = {10, 100};
  int fill = 10000;
  int claim_count = 100;
  int exec_allocs = 200;
  std::string bin_dir;
  bool no_lock = false;
  app.add_flag("--no-node-lock", no_lock, "In-process clients take no node lock");
  app.add_option("--etcd-endpoint", endpoint, "Use this etcd instead of starting one");
  app.add_option("--allocs", allocs, "Allocations per (nodes, clients) run")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent clients")->delimiter(',');
  app.add_option("--nodes", nodes, "Node names the allocations spread over")->delimiter(',');
  app.add_option("--fill", fill, "Existing blocks for the claim run")->capture_default_str();
  app.add_option("--claims", claim_count, "Claims measured per pool")->capture_default_str();
  app.add_option("--exec-allocs", exec_allocs, "ADDs through the executable per run (0: skip)")
      ->capture_default_str();
  app.add_option("--bin", bin_dir, "Directory of the global-ipam executable");
  std::string reference_host_local = "/usr/lib/cni/host-local";
  app.add_option("--reference-host-local", reference_host_local,
                 "Debian's host-local, timed beside ours for context")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<strait::test::EtcdCluster> own;
  if (endpoint.empty()) {
    own = std::make_unique<strait::test::EtcdCluster>();
    endpoint = own->endpoint(0);
  }
  std::printf("global-ipam-bench: etcd %s; load average at start: %s\n", endpoint.c_str(),
              loadavg().c_str());

  char lock_tmpl[] = "/tmp/strait-gipam-bench-locks.XXXXXX";
  std::string lock_dir = mkdtemp(lock_tmpl);
  std::string client_lock_dir = no_lock ? "" : lock_dir;
  std::vector<Row> rows;
  for (int n : nodes) {
    for (int c : clients) {
      std::string prefix = "/bench-alloc-" + std::to_string(n) + "-" + std::to_string(c);
      rows.push_back(in_process(endpoint, prefix, n, c, allocs, client_lock_dir));
      std::fprintf(stderr, "%s: %.0f/s\n", rows.back().name.c_str(), rows.back().per_sec);
    }
  }
  print(rows, "In-process allocations on etcd (BlockAllocator + EtcdStore per client thread)");

  {
    std::error_code ec;
    fs::remove_all(lock_dir, ec);
  }
  auto [empty, full] = claims(endpoint, fill, claim_count);
  print({empty, full}, "Block claim (a new node's first allocation), interleaved");
  std::printf("\nclaim p50 ratio (%d blocks / 0 blocks): %.2fx\n", fill, full.p50 / empty.p50);

  if (exec_allocs > 0 && !bin_dir.empty()) {
    char tmpl[] = "/tmp/strait-gipam-bench-file.XXXXXX";
    std::string file_dir = mkdtemp(tmpl);
    std::vector<Row> exec_rows;
    for (int c : {1, 8}) {
      std::string tag = std::to_string(c);
      json pool = {{{"name", "p"}, {"cidr", "10.64.0.0/12"}}};
      json on_etcd = {
          {"type", "global-ipam"},
          {"pools", pool},
          {"nodeLockDir", file_dir + "/locks"},
          {"store",
           {{"type", "etcd"}, {"endpoints", {endpoint}}, {"prefix", "/bench-exec-" + tag}}}};
      json on_file = on_etcd;
      on_file["store"] = {{"type", "file"}, {"path", file_dir + "/store-" + tag}};
      // Context, not a competitor: node-local IPAM (no cluster store), ours and Debian's.
      json local = {{"type", "host-local"},
                    {"subnet", "10.80.0.0/16"},
                    {"dataDir", file_dir + "/host-local-" + tag}};
      json local_ref = local;
      local_ref["dataDir"] = file_dir + "/host-local-ref-" + tag;
      exec_rows.push_back(
          through_exec(bin_dir + "/global-ipam", on_etcd, c, exec_allocs, "global-ipam, etcd"));
      exec_rows.push_back(
          through_exec(bin_dir + "/global-ipam", on_file, c, exec_allocs, "global-ipam, file"));
      exec_rows.push_back(through_exec(bin_dir + "/host-local", local, c, exec_allocs,
                                       "host-local (ours, node-local)"));
      if (access(reference_host_local.c_str(), X_OK) == 0) {
        exec_rows.push_back(through_exec(reference_host_local, local_ref, c, exec_allocs,
                                         "host-local (reference, node-local)"));
      }
    }
    std::error_code ec;
    fs::remove_all(file_dir, ec);
    print(exec_rows,
          "ADD through the executable (exec + config + store), 10 node names; host-local rows "
          "for context");
  }
  std::printf("\nload average at end: %s\n", loadavg().c_str());
  return 0;
}
