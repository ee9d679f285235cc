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
// Every row also says what an allocation cost, which does not depend on how busy the shared
// machine is: etcd's CPU time (utime + stime of its process, for the etcd started here), the
// clients' CPU time (in-process: this process; through the executable: the execs' rusage),
// the KV requests and the raft proposals (writes) etcd counted (its /metrics), and in-process
// the JSON bytes the stores sent and received. With etcd on the same 2 CPUs, the rate at 32
// clients is bounded by (etcd CPU + client CPU) per allocation.
//
// It starts its own etcd (Debian's etcd-server) on 127.0.0.1 with free ports and a temp data
// directory unless --etcd-endpoints is given, and removes it at exit. Nothing but loopback.
#include <fcntl.h>
#include <sys/resource.h>
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
#include <iterator>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/spawn_client.h"
#include "ipam/global/block.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/block_cache.h"
#include "ipam/global/config.h"
#include "ipam/global/etcd_store.h"
#include "ipam/global/http_client.h"
#include "ipam/global/node_lock.h"
#include "ipam/global/records.h"
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

// What a row cost, read before and after it: the figures that do not depend on how busy the
// machine is (wall-clock rates on a shared machine are noise; CPU and requests per allocation
// are not, and with etcd on the same 2 CPUs they bound the rate).
struct Cost {
  double etcd_cpu_ms = NAN;  // etcd's utime + stime (/proc/<pid>/stat); NAN: not our etcd
  int64_t requests = 0;      // KV Range + Txn requests etcd started (its /metrics)
  int64_t writes = 0;        // raft proposals etcd committed (write txns, failed ones too)
  double client_cpu_ms = 0;  // in-process: this process; through the executable: the execs
  int64_t bytes = 0;         // in-process: JSON bodies sent + received by the stores
  Cost operator-(const Cost& o) const {
    return {etcd_cpu_ms - o.etcd_cpu_ms, requests - o.requests, writes - o.writes,
            client_cpu_ms - o.client_cpu_ms, bytes - o.bytes};
  }
};

// Reads etcd's counters and CPU time.
class Meter {
 public:
  Meter(const std::string& endpoint, pid_t pid)
      : conn_(ipam::HttpUrl::parse(endpoint), ipam::TlsFiles{}), pid_(pid) {}
  Cost now() {
    Cost c;
    if (pid_ > 0) {
      std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
      std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::istringstream rest(all.substr(all.rfind(')') + 2));
      std::string field;
      int64_t utime = 0, stime = 0;
      // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoll(field);
        if (i == 15) stime = std::stoll(field);
      }
      c.etcd_cpu_ms =
          static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    auto deadline = Clock::now() + std::chrono::seconds(10);
    std::istringstream metrics(
        conn_.post("/metrics", "", deadline, std::chrono::milliseconds(1000)).body);
    for (std::string line; std::getline(metrics, line);) {
      auto value = [&] { return std::stoll(line.substr(line.rfind(' ') + 1)); };
      if (line.rfind(
              "grpc_server_started_total{grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\"",
              0) == 0 ||
          line.rfind(
              "grpc_server_started_total{grpc_method=\"Txn\",grpc_service=\"etcdserverpb.KV\"",
              0) == 0) {
        c.requests += value();
      } else if (line.rfind("etcd_server_proposals_committed_total ", 0) == 0) {
        c.writes = value();
      }
    }
    return c;
  }

 private:
  ipam::HttpConnection conn_;
  pid_t pid_;
};

double process_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

struct Row {
  std::string name;
  size_t n = 0;
  double per_sec = 0;
  double p50 = 0;
  double p99 = 0;
  int errors = 0;
  int64_t rss_kb = 0;  // through the executable: the largest peak RSS of one exec
  int duplicates = 0;  // addresses handed out twice (rows that check)
  std::optional<Cost> cost = std::nullopt;  // the whole row's
  // In-process: each allocation's wait for the node lock, and its hold (cache read,
  // allocator, cache save) up to the release, in ms.
  std::vector<double> lock_wait = {};
  std::vector<double> hold = {};
};

void print(const std::vector<Row>& rows, const char* title) {
  std::printf(
      "\n%s\n\n| run | n | per s | p50 ms | p99 ms | peak RSS MB | errors | etcd CPU ms/alloc | "
      "client CPU ms/alloc | requests/alloc | writes/alloc | KB/alloc |\n"
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
      title);
  for (const auto& r : rows) {
    char rss[32] = "";
    if (r.rss_kb) std::snprintf(rss, sizeof rss, "%.1f", static_cast<double>(r.rss_kb) / 1024);
    char cost[160] = "| | | | |";
    if (r.cost && r.n > 0) {
      double n = static_cast<double>(r.n);
      char etcd[32] = "";
      if (!std::isnan(r.cost->etcd_cpu_ms)) {
        std::snprintf(etcd, sizeof etcd, "%.2f", r.cost->etcd_cpu_ms / n);
      }
      char kb[32] = "";
      if (r.cost->bytes)
        std::snprintf(kb, sizeof kb, "%.1f", static_cast<double>(r.cost->bytes) / n / 1024);
      std::snprintf(cost, sizeof cost, "%s | %.2f | %.2f | %.2f | %s", etcd,
                    r.cost->client_cpu_ms / n, static_cast<double>(r.cost->requests) / n,
                    static_cast<double>(r.cost->writes) / n, kb);
    }
    std::printf("| %s | %zu | %.0f | %.2f | %.2f | %s | %d | %s |\n", r.name.c_str(), r.n,
                r.per_sec, r.p50, r.p99, rss, r.errors, cost);
  }
  std::fflush(stdout);
}

// What one operation reports beside success: an exec's peak RSS and CPU time.
struct OpStats {
  int64_t rss_kb = 0;
  double cpu_ms = 0;
};

// Runs operations 0..ops-1 on `clients` threads (thread t takes t, t+clients, ...) and times
// each. make_op(t) is called on thread t and returns its op(k, why, stats): true on success;
// on failure it returns false after describing the error in `why` (the first failure is
// printed); an exec fills *stats. The row's cost is read around it with `meter`; its client
// CPU is the execs' when they report it, else this process's.
template <class MakeOp>
Row run_clients(const std::string& name, int clients, int ops, Meter& meter, MakeOp make_op) {
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<int> errors{0};
  std::atomic<int64_t> rss{0};
  double exec_cpu_ms = 0;
  Cost before = meter.now();
  double cpu_before = process_cpu_ms();
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto op = make_op(t);
      std::vector<double> mine;
      double cpu = 0;
      for (int k = t; k < ops; k += clients) {
        std::string why;
        OpStats st;
        auto t0 = Clock::now();
        if (op(k, why, &st)) {
          mine.push_back(ms_since(t0));
        } else if (errors++ == 0) {
          std::cerr << name << ": operation failed: " << why << "\n";
        }
        cpu += st.cpu_ms;
        for (int64_t seen = rss.load();
             st.rss_kb > seen && !rss.compare_exchange_weak(seen, st.rss_kb);) {
        }
      }
      std::lock_guard lock(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
      exec_cpu_ms += cpu;
    });
  }
  for (auto& t : threads) t.join();
  double secs = ms_since(start) / 1000;
  Cost cost = meter.now() - before;
  cost.client_cpu_ms = exec_cpu_ms > 0 ? exec_cpu_ms : process_cpu_ms() - cpu_before;
  Row r{name + ", " + std::to_string(clients) + " clients",
        lat.size(),
        static_cast<double>(lat.size()) / secs,
        quantile(lat, 0.5),
        quantile(lat, 0.99),
        errors.load()};
  r.rss_kb = rss.load();
  r.cost = cost;
  return r;
}

Row in_process(const std::string& endpoint, const std::string& prefix, int nodes, int clients,
               int allocs, const std::string& lock_dir, Meter& meter) {
  auto cfg = pools("10.0.0.0/12");
  std::mutex mu;
  std::vector<std::shared_ptr<ipam::EtcdStore>> stores;
  std::vector<double> waits;
  std::vector<double> holds;
  Row row = run_clients(std::to_string(nodes) + " nodes", clients, allocs, meter, [&](int) {
    // One store per client: one keep-alive connection, as one CNI exec has.
    auto store = std::make_shared<ipam::EtcdStore>(store_options(endpoint, prefix));
    {
      std::lock_guard lock(mu);
      stores.push_back(store);
    }
    return [&, store](int k, std::string& why, OpStats*) {
      ipam::AllocatorOptions o;
      o.node = "node-" + std::to_string(k % nodes);
      try {
        // As an ADD does: the store's connection, this node's single-flight lock, the node's
        // cache beside it, then the allocator.
        store->prepare();
        auto t0 = Clock::now();
        auto lock = ipam::NodeLock::acquire(lock_dir, o.node, std::chrono::seconds(10));
        auto t1 = Clock::now();
        std::optional<ipam::BlockCache> cache;
        if (lock.held()) {
          cache.emplace(ipam::BlockCache::path_for(lock.queue_dir(), store->describe()));
          o.cache = &*cache;
        }
        ipam::BlockAllocator a(cfg, *store, o);
        a.assign(ipam::records::Handle{"bench", "c" + std::to_string(k), "eth0"}, {});
        if (cache) cache->save();
        lock = ipam::NodeLock();
        std::lock_guard g(mu);
        waits.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        holds.push_back(ms_since(t1));
        return true;
      } catch (const std::exception& e) {
        why = e.what();
        return false;
      }
    };
  });
  for (const auto& s : stores)
    row.cost->bytes += s->traffic().bytes_sent + s->traffic().bytes_received;
  row.lock_wait = std::move(waits);
  row.hold = std::move(holds);
  return row;
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

// Where the bench's helpers are: next to this executable.
std::string bench_dir() { return fs::read_symlink("/proc/self/exe").parent_path().string(); }

// ADDs of `ipam` (an IPAM config) through the executable, exec'd as a runtime does by a small
// static fork server per client (bench/spawn_client.h: so that each exec's peak RSS is its
// own); the allocations spread over `nodes` node names. With `addresses`, every address
// handed out is collected there (to check that none is handed out twice).
Row through_exec(const std::string& binary, const json& ipam, int clients, int allocs,
                 const std::string& name, Meter& meter, int nodes = 10,
                 std::vector<std::string>* addresses = nullptr) {
  json conf = {{"cniVersion", "1.0.0"}, {"name", "benchexec"}, {"type", "bench"}, {"ipam", ipam}};
  std::string input = conf.dump();
  std::mutex mu;
  std::string server = bench_dir() + "/strait-bench-spawn";
  return run_clients(name, clients, allocs, meter, [&](int) {
    auto spawner = std::make_shared<strait::bench::SpawnClient>(server, "/proc/self/ns/net");
    return [&, spawner](int k, std::string& why, OpStats* st) {
      std::vector<std::string> env = {"CNI_COMMAND=ADD",
                                      "CNI_CONTAINERID=x" + std::to_string(k),
                                      "CNI_NETNS=/run/netns/unused",
                                      "CNI_IFNAME=eth0",
                                      "CNI_PATH=/nonexistent",
                                      "K8S_NODE_NAME=node-" + std::to_string(k % nodes)};
      auto r = spawner->run(binary, env, input);
      st->rss_kb = r.stats.maxrss_kb;
      st->cpu_ms = r.cpu_ms();
      why = r.out + r.err;
      if (r.stats.exit_code != 0) return false;
      if (addresses) {
        try {
          std::string ip = json::parse(r.out).at("ips").at(0).at("address");
          std::lock_guard lock(mu);
          addresses->push_back(ip);
        } catch (const std::exception& e) {
          why = "no address in " + r.out;
          return false;
        }
      }
      return true;
    };
  });
}

int duplicates_in(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return static_cast<int>(v.size() -
                          static_cast<size_t>(std::unique(v.begin(), v.end()) - v.begin()));
}

// One etcd range request from a fresh process with each client candidate
// (bench/etcd_clients/), interleaved round-robin, `runs` times each.
std::vector<Row> client_probes(const std::string& endpoint, int runs) {
  auto url = ipam::HttpUrl::parse(endpoint);
  std::string body = json{{"key", "L2JlbmNoLXByb2JlL2s="}}.dump();  // "/bench-probe/k"
  std::vector<std::pair<std::string, std::string>> probes;
  for (const char* p : {"noop", "own", "httplib", "curl", "grpc-load"}) {
    std::string path = bench_dir() + "/etcd-probe-" + p;
    if (access(path.c_str(), X_OK) == 0) probes.emplace_back(p, path);
  }
  strait::bench::SpawnClient spawner(bench_dir() + "/strait-bench-spawn", "/proc/self/ns/net");
  std::vector<std::string> env = {"PROBE_HOST=" + url.host,
                                  "PROBE_PORT=" + std::to_string(url.port), "PROBE_BODY=" + body};
  std::vector<std::vector<double>> lat(probes.size());
  std::vector<int64_t> rss(probes.size());
  std::vector<int> errors(probes.size());
  for (int i = 0; i < runs; ++i) {
    for (size_t p = 0; p < probes.size(); ++p) {
      auto r = spawner.run(probes[p].second, env, "");
      if (r.stats.exit_code != 0) {
        if (errors[p]++ == 0) std::cerr << probes[p].first << ": " << r.err << "\n";
        continue;
      }
      lat[p].push_back(r.ms());
      rss[p] = std::max(rss[p], r.stats.maxrss_kb);
    }
  }
  std::vector<Row> rows;
  for (size_t p = 0; p < probes.size(); ++p) {
    Row r{probes[p].first,       lat[p].size(),          0,
          quantile(lat[p], 0.5), quantile(lat[p], 0.99), errors[p]};
    r.rss_kb = rss[p];
    rows.push_back(r);
  }
  return rows;
}

// Rows of one client, interleaved one ADD at a time (load changes hit them alike): each spec
// is a name, an executable and its IPAM config.
struct ExecSpec {
  std::string name;
  std::string binary;
  json ipam;
  bool on_etcd = false;
};
// etcd's share goes to the one spec on etcd (none when several are: it cannot be split).
std::vector<Row> exec_interleaved(const std::vector<ExecSpec>& specs, int allocs, Meter& meter) {
  strait::bench::SpawnClient spawner(bench_dir() + "/strait-bench-spawn", "/proc/self/ns/net");
  std::vector<std::string> inputs;
  for (const auto& sp : specs) {
    inputs.push_back(
        json{{"cniVersion", "1.0.0"}, {"name", "benchexec"}, {"type", "bench"}, {"ipam", sp.ipam}}
            .dump());
  }
  std::vector<std::vector<double>> lat(specs.size());
  std::vector<Row> rows(specs.size());
  std::vector<double> cpu(specs.size());
  Cost before = meter.now();
  for (int k = 0; k < allocs; ++k) {
    for (size_t i = 0; i < specs.size(); ++i) {
      std::vector<std::string> env = {"CNI_COMMAND=ADD",
                                      "CNI_CONTAINERID=x" + std::to_string(k),
                                      "CNI_NETNS=/run/netns/unused",
                                      "CNI_IFNAME=eth0",
                                      "CNI_PATH=/nonexistent",
                                      "K8S_NODE_NAME=node-" + std::to_string(k % 10)};
      auto r = spawner.run(specs[i].binary, env, inputs[i]);
      if (r.stats.exit_code != 0) {
        if (rows[i].errors++ == 0) std::cerr << specs[i].name << ": " << r.out << r.err << "\n";
        continue;
      }
      lat[i].push_back(r.ms());
      cpu[i] += r.cpu_ms();
      rows[i].rss_kb = std::max(rows[i].rss_kb, r.stats.maxrss_kb);
    }
  }
  Cost etcd = meter.now() - before;
  auto etcd_specs =
      std::count_if(specs.begin(), specs.end(), [](const auto& s) { return s.on_etcd; });
  for (size_t i = 0; i < specs.size(); ++i) {
    Cost c;
    if (specs[i].on_etcd && etcd_specs == 1) c = etcd;
    if (!specs[i].on_etcd) c.etcd_cpu_ms = NAN;
    if (specs[i].on_etcd && etcd_specs > 1) c.etcd_cpu_ms = NAN;
    c.client_cpu_ms = cpu[i];
    rows[i].cost = c;
    rows[i].name = specs[i].name + ", 1 client";
    rows[i].n = lat[i].size();
    rows[i].p50 = quantile(lat[i], 0.5);
    rows[i].p99 = quantile(lat[i], 0.99);
    rows[i].per_sec = rows[i].p50 > 0 ? 1000 / rows[i].p50 : 0;
  }
  return rows;
}

const Row* find_row(const std::vector<Row>& rows, const std::string& name) {
  for (const auto& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
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
  int wide_allocs = 2000;
  int probe_runs = 200;
  std::string bin_dir;
  std::string before_bin;
  bool no_lock = false;
  app.add_flag("--no-node-lock", no_lock, "In-process clients take no node lock");
  app.add_option("--etcd-endpoint", endpoint, "Use this etcd instead of starting one");
  app.add_option("--allocs", allocs, "Allocations per in-process (nodes, clients) run")
      ->capture_default_str();
  app.add_option("--clients", clients, "Concurrent in-process clients")->delimiter(',');
  app.add_option("--nodes", nodes, "Node names the allocations spread over")->delimiter(',');
  app.add_option("--fill", fill, "Existing blocks for the claim run")->capture_default_str();
  app.add_option("--claims", claim_count, "Claims measured per pool (0: skip)")
      ->capture_default_str();
  app.add_option("--exec-allocs", exec_allocs,
                 "ADDs through the executable per 1- and 8-client row (0: skip the exec rows)")
      ->capture_default_str();
  app.add_option("--wide-allocs", wide_allocs,
                 "ADDs of the 32 clients x 8 nodes row through the executable")
      ->capture_default_str();
  app.add_option("--probes", probe_runs, "Runs of each etcd client candidate (0: skip)")
      ->capture_default_str();
  app.add_option("--bin", bin_dir, "Directory of the global-ipam executable");
  app.add_option("--before-bin", before_bin,
                 "A global-ipam built before a change, timed beside ours on etcd");
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
  // etcd's CPU time only for the etcd started here (another one's pid is not ours to know).
  Meter meter(endpoint, own ? own->pid(0) : -1);

  if (probe_runs > 0) {
    print(client_probes(endpoint, probe_runs),
          "etcd client candidates: one range request from a fresh process (exec, connect, "
          "request, exit), interleaved; noop is a static executable doing nothing");
  }

  std::vector<Row> exec_rows;
  char tmpl[] = "/tmp/strait-gipam-bench-file.XXXXXX";
  std::string file_dir = mkdtemp(tmpl);
  // The node locks (and the block caches beside them) where the default nodeLockDir keeps
  // them, on tmpfs (/run); the file store and host-local's dataDir on disk, as by default.
  char run_tmpl[] = "/run/strait-gipam-bench-locks.XXXXXX";
  std::string run_dir = mkdtemp(run_tmpl);
  auto on_etcd = [&](const std::string& tag) {
    return json{
        {"type", "global-ipam"},
        {"pools", {{{"name", "p"}, {"cidr", "10.64.0.0/12"}}}},
        {"nodeLockDir", run_dir + "/locks-" + tag},
        {"store", {{"type", "etcd"}, {"endpoints", {endpoint}}, {"prefix", "/bench-exec-" + tag}}}};
  };
  auto on_file = [&](const std::string& tag) {
    json j = on_etcd(tag);
    j["store"] = {{"type", "file"}, {"path", file_dir + "/store-" + tag}};
    return j;
  };
  auto local = [&](const std::string& tag) {
    return json{{"type", "host-local"},
                {"subnet", "10.80.0.0/16"},
                {"dataDir", file_dir + "/host-local-" + tag}};
  };
  if (exec_allocs > 0 && !bin_dir.empty()) {
    std::vector<ExecSpec> specs = {
        {"global-ipam, etcd", bin_dir + "/global-ipam", on_etcd("1"), true},
        {"global-ipam, file", bin_dir + "/global-ipam", on_file("1")},
        {"host-local (ours)", bin_dir + "/host-local", local("1")}};
    if (!before_bin.empty()) {
      specs.push_back({"global-ipam before, etcd", before_bin, on_etcd("before"), true});
    }
    if (access(reference_host_local.c_str(), X_OK) == 0) {
      specs.push_back({"host-local (reference)", reference_host_local, local("ref")});
    }
    for (auto& r : exec_interleaved(specs, exec_allocs, meter)) exec_rows.push_back(r);
    exec_rows.push_back(through_exec(bin_dir + "/global-ipam", on_etcd("8"), 8, exec_allocs,
                                     "global-ipam, etcd", meter));
    Row file8 = through_exec(bin_dir + "/global-ipam", on_file("8"), 8, exec_allocs,
                             "global-ipam, file", meter);
    file8.cost->etcd_cpu_ms = NAN;
    file8.cost->requests = file8.cost->writes = 0;
    exec_rows.push_back(file8);
    std::vector<std::string> addresses;
    Row wide = through_exec(bin_dir + "/global-ipam", on_etcd("wide"), 32, wide_allocs,
                            "global-ipam, etcd, 8 nodes", meter, 8, &addresses);
    wide.duplicates = duplicates_in(addresses);
    exec_rows.push_back(wide);
    print(exec_rows,
          "ADD through the executable (exec + config + store; 10 node names unless said); "
          "1-client rows interleaved; host-local rows for context");
    std::printf("\n32 clients x 8 nodes: %zu addresses, %d handed out twice\n", addresses.size(),
                wide.duplicates);
  }
  {
    std::error_code ec;
    fs::remove_all(file_dir, ec);
  }

  std::string lock_dir = run_dir + "/in-process";
  std::string client_lock_dir = no_lock ? "" : lock_dir;
  std::vector<Row> rows;
  for (int n : nodes) {
    for (int c : clients) {
      std::string prefix = "/bench-alloc-" + std::to_string(n) + "-" + std::to_string(c);
      Row r = in_process(endpoint, prefix, n, c, allocs, client_lock_dir, meter);
      r.name = std::to_string(n) + " nodes, " + std::to_string(c) + " clients";
      rows.push_back(r);
      std::fprintf(stderr, "%s: %.0f/s\n", rows.back().name.c_str(), rows.back().per_sec);
    }
  }
  print(rows, "In-process allocations on etcd (BlockAllocator + EtcdStore per client thread)");
  std::printf(
      "\nWhere an in-process allocation's time goes: the wait for the node lock, and the hold "
      "(cache read, allocator, cache save, release)\n\n| run | wait p50 ms | wait p99 ms | hold "
      "p50 ms | hold p99 ms |\n|---|--:|--:|--:|--:|\n");
  for (const auto& r : rows) {
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", r.name.c_str(), quantile(r.lock_wait, 0.5),
                quantile(r.lock_wait, 0.99), quantile(r.hold, 0.5), quantile(r.hold, 0.99));
  }
  {
    std::error_code ec;
    fs::remove_all(run_dir, ec);
  }

  if (claim_count > 0) {
    auto [empty, full] = claims(endpoint, fill, claim_count);
    print({empty, full}, "Block claim (a new node's first allocation), interleaved");
    std::printf("\nclaim p50 ratio (%d blocks / 0 blocks): %.2fx\n", fill, full.p50 / empty.p50);
  }

  // The targets, each with its figure: met or missed, as measured here.
  std::printf("\nTargets\n\n| target | figure | |\n|---|---|---|\n");
  auto target = [](const std::string& what, bool have, bool met, const std::string& figure) {
    std::printf("| %s | %s | %s |\n", what.c_str(), have ? figure.c_str() : "not measured",
                !have ? ""
                : met ? "met"
                      : "missed");
  };
  auto num = [](double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return std::string(buf);
  };
  const Row* ex = find_row(exec_rows, "global-ipam, etcd, 1 client");
  const Row* fi = find_row(exec_rows, "global-ipam, file, 1 client");
  const Row* hl = find_row(exec_rows, "host-local (ours), 1 client");
  const Row* wide = find_row(exec_rows, "global-ipam, etcd, 8 nodes, 32 clients");
  const Row* in1 = find_row(rows, "10 nodes, 1 clients");
  const Row* in32 = find_row(rows, "10 nodes, 32 clients");
  const Row* in100 = find_row(rows, "100 nodes, 32 clients");
  target("ADD through the executable on etcd: p50 <= 8 ms", ex, ex && ex->p50 <= 8,
         ex ? num(ex->p50, 2) + " ms" : "");
  target(
      "... and <= 2.5x the same allocation in-process (1 client, 10 nodes)", ex && in1,
      ex && in1 && ex->p50 <= 2.5 * in1->p50,
      ex && in1 ? num(ex->p50 / in1->p50, 2) + "x (in-process " + num(in1->p50, 2) + " ms)" : "");
  target("ADD through the executable on the file store <= 1.5x our host-local", fi && hl,
         fi && hl && fi->p50 <= 1.5 * hl->p50,
         fi && hl ? num(fi->p50 / hl->p50, 2) + "x (" + num(fi->p50, 2) + " vs " + num(hl->p50, 2) +
                        " ms)"
                  : "");
  target("peak RSS of one global-ipam exec on etcd <= 4 MB", ex, ex && ex->rss_kb <= 4096,
         ex ? num(static_cast<double>(ex->rss_kb) / 1024, 1) + " MB" : "");
  target("through the executable, 32 clients over 8 nodes on etcd: >= 500/s, no duplicate", wide,
         wide && wide->per_sec >= 500 && wide->duplicates == 0 && wide->errors == 0,
         wide ? num(wide->per_sec, 0) + "/s, p50 " + num(wide->p50, 1) + " ms, p99 " +
                    num(wide->p99, 1) + " ms" + ", " + std::to_string(wide->duplicates) +
                    " duplicates, " + std::to_string(wide->errors) + " errors"
              : "");
  target("in-process, 32 clients over 10 nodes: >= 800/s and p99 <= 120 ms", in32,
         in32 && in32->per_sec >= 800 && in32->p99 <= 120,
         in32 ? num(in32->per_sec, 0) + "/s, p50 " + num(in32->p50, 1) + " ms, p99 " +
                    num(in32->p99, 1) + " ms"
              : "");
  target("in-process, 32 clients over 100 nodes: >= 1000/s", in100, in100 && in100->per_sec >= 1000,
         in100 ? num(in100->per_sec, 0) + "/s, p50 " + num(in100->p50, 1) + " ms, p99 " +
                     num(in100->p99, 1) + " ms"
               : "");
  std::printf("\nload average at end: %s\n", loadavg().c_str());
  return 0;
}
