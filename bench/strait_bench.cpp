// strait-bench: our macvlan + host-local against the reference binaries, side by side,
// interleaved, through one client; and the kernel's own floor for the same work. See
// docs/benchmarks.md for the method and scripts/bench for how it is run.
#include <signal.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/lab.h"
#include "bench/report.h"
#include "bench/spawn_client.h"
#include "bench/stats.h"
#include "libcni/core/ip.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/route.h"
#include "libcni/process/invoke.h"

#ifndef STRAIT_BUILD_TYPE
#define STRAIT_BUILD_TYPE "unknown"
#endif

namespace strait::bench {
namespace {

// Set by SIGINT/SIGTERM/SIGHUP; the loops check it and unwind, so every namespace and temp
// directory is removed by the destructors.
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

void check_stop() {
  if (g_stop) throw std::runtime_error("interrupted");
}

struct Options {
  int iterations = 200;
  int rss_iterations = 50;
  std::vector<int> leases = {0, 500, 1000};
  int pods = 4;
  std::string ours_dir;
  std::string ref_dir = "/usr/lib/cni";
  std::string prefix;
  std::string work;
  std::string write_doc;
  std::string revision = "unknown revision";
  std::vector<std::string> scenarios = {"version", "chain", "alone", "host-local"};
};

struct Impl {
  std::string who;  // "ours" | "ref"
  std::string dir;  // holds macvlan and host-local
};

std::string dirname_of_self() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

Sample sample_of(const Exec& e) { return {e.ms(), e.stats.maxrss_kb, e.cpu_ms(), e.stats.nvcsw}; }

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The order of the contestants in iteration `i`: every permutation in turn, so that none
// is always first (the first one after a DEL-heavy phase sees a different machine).
template <class T>
std::vector<T> rotate_order(std::vector<T> items, int i) {
  for (int k = 0; k < i % 6; ++k) std::next_permutation(items.begin(), items.end());
  return items;
}

// The macvlan + host-local network config, as a runtime hands it to the plugin.
nlohmann::json macvlan_config(const std::string& net, const std::string& data_dir,
                              const std::string& subnet, const std::string& range_start,
                              const std::string& range_end, const std::string& gateway) {
  return {
      {"cniVersion", "1.0.0"},
      {"name", net},
      {"type", "macvlan"},
      {"master", Lab::kMaster},
      {"mode", "bridge"},
      {"ipam",
       {{"type", "host-local"},
        {"ranges",
         {{{{"subnet", subnet},
            {"rangeStart", range_start},
            {"rangeEnd", range_end},
            {"gateway", gateway}}}}},
        {"routes", {{{"dst", "0.0.0.0/0"}}}},
        {"dataDir", data_dir}}},
  };
}

// The kernel's floor: the netlink requests an ADD cannot avoid, in-process, no exec.
class KernelFloor {
 public:
  explicit KernelFloor(const Lab& lab)
      : host_(cni::Netns::open(lab.host_path())), host_sock_(cni::NlSocket::in(host_)) {
    master_ = cni::get_link(host_sock_, Lab::kMaster).index;
    for (size_t i = 0; i < lab.pod_count(); ++i) {
      pods_.push_back(cni::Netns::open(lab.pod_path(i)));
      pod_socks_.push_back(cni::NlSocket::in(pods_.back()));
    }
  }

  double add(size_t pod) {
    cni::NlSocket& sock = pod_socks_.at(pod);
    const double start = now_ms();
    cni::create_macvlan(host_sock_, {.name = "eth0",
                                     .master_index = master_,
                                     .mode = cni::MacvlanMode::kBridge,
                                     .netns_fd = pods_.at(pod).fd()});
    const int index = cni::get_link(sock, "eth0").index;
    cni::add_address(sock, index, cni::IpNet::parse("192.0.2.200/24"));
    cni::set_link_up(sock, index);
    cni::add_route(sock, {.dst = cni::IpNet::parse("0.0.0.0/0"),
                          .gw = cni::IpAddress::parse("192.0.2.1"),
                          .ifindex = index});
    return now_ms() - start;
  }

  double del(size_t pod) {
    const double start = now_ms();
    cni::delete_link(pod_socks_.at(pod), "eth0");
    return now_ms() - start;
  }

 private:
  cni::Netns host_;
  cni::NlSocket host_sock_;
  int master_ = 0;
  std::vector<cni::Netns> pods_;
  std::vector<cni::NlSocket> pod_socks_;
};

class Bench {
 public:
  Bench(const Options& opt, const Lab& lab, SpawnClient& spawner, const std::string& work)
      : opt_(opt),
        lab_(lab),
        spawner_(spawner),
        work_(work),
        ours_{"ours", opt.ours_dir},
        ref_{"ref", opt.ref_dir},
        net_(opt.prefix) {}

  Results& results() { return results_; }

  void version();
  void chain();
  void alone();
  void host_local();

 private:
  // Runs one plugin command and fails the run if the plugin failed.
  Exec call(const std::string& binary, const std::string& command, const std::string& cid,
            const std::string& netns, const std::string& cni_path, const std::string& input);
  void record(const std::string& key, const Sample& s) { results_[key].add(s); }
  std::string stub_dir();

  const Options& opt_;
  const Lab& lab_;
  SpawnClient& spawner_;
  std::string work_;
  Impl ours_, ref_;
  std::string net_;
  Results results_;
};

Exec Bench::call(const std::string& binary, const std::string& command, const std::string& cid,
                 const std::string& netns, const std::string& cni_path, const std::string& input) {
  check_stop();
  std::vector<std::string> env = {
      "CNI_COMMAND=" + command,
      "CNI_CONTAINERID=" + cid,
      "CNI_NETNS=" + netns,
      "CNI_IFNAME=eth0",
      "CNI_PATH=" + cni_path,
      "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=" + cid +
          ";K8S_POD_INFRA_CONTAINER_ID=" + cid,
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  };
  Exec e = spawner_.run(binary, env, input);
  if (e.stats.exit_code != 0) {
    throw std::runtime_error(binary + " " + command + " (container " + cid + ") failed, exit " +
                             std::to_string(e.stats.exit_code) + ": " + e.out + e.err);
  }
  if (command == "ADD") {
    auto j = nlohmann::json::parse(e.out, nullptr, false);
    if (!j.is_object() || !j.contains("ips") || j["ips"].empty()) {
      throw std::runtime_error(binary + " ADD printed no IPs: " + e.out);
    }
  }
  return e;
}

std::string Bench::stub_dir() {
  const std::string dir = work_ + "/stub";
  if (!std::filesystem::exists(dir + "/host-local")) {
    std::filesystem::create_directories(dir);
    std::filesystem::create_symlink(dirname_of_self() + "/strait-bench-ipam-stub",
                                    dir + "/host-local");
  }
  return dir;
}

// Start-up cost: VERSION does nothing but load, parse the config and print.
void Bench::version() {
  const std::string input = R"({"cniVersion":"1.0.0"})";
  const std::string stub = dirname_of_self() + "/strait-bench-ipam-stub";
  for (int i = 0; i < opt_.rss_iterations; ++i) {
    std::vector<std::string> bins = {"macvlan", "host-local"};
    for (const auto& bin : bins) {
      for (const Impl* impl : rotate_order(std::vector<const Impl*>{&ours_, &ref_}, i)) {
        Exec e = call(impl->dir + "/" + bin, "VERSION", "dummy", "dummy", "dummy", input);
        record("version." + bin + "." + impl->who, sample_of(e));
      }
    }
    record("version.stub.stub", sample_of(call(stub, "VERSION", "dummy", "dummy", "dummy", input)));
  }
}

// Scenario 1: macvlan + host-local ADD, CHECK, DEL, and the kernel floor, interleaved.
void Bench::chain() {
  KernelFloor floor(lab_);
  const std::string subnet = "192.0.2.0/24";
  std::map<std::string, nlohmann::json> conf;
  for (const Impl* impl : {&ours_, &ref_}) {
    conf[impl->who] = macvlan_config(net_, work_ + "/chain-" + impl->who, subnet, "192.0.2.10",
                                     "192.0.2.250", "192.0.2.1");
  }
  enum Who { kOurs, kRef, kFloor };
  for (int i = 0; i < opt_.iterations; ++i) {
    if (i % 20 == 0) std::fprintf(stderr, "  chain %d/%d\r", i, opt_.iterations);
    const auto order = rotate_order(std::vector<Who>{kOurs, kRef, kFloor}, i);
    // Contestant w uses pod (i + w) % pods: distinct pods within an iteration, and every
    // pod serves every contestant over the run.
    auto pod = [&](Who w) { return static_cast<size_t>(i + w) % lab_.pod_count(); };
    auto impl = [&](Who w) -> const Impl& { return w == kOurs ? ours_ : ref_; };
    auto cid = [&](Who w) { return "chain-" + std::to_string(i) + "-" + impl(w).who; };
    std::map<Who, nlohmann::json> prev;
    for (Who w : order) {
      if (w == kFloor) {
        record("chain.ADD.floor", {floor.add(pod(w))});
        continue;
      }
      Exec e = call(impl(w).dir + "/macvlan", "ADD", cid(w), lab_.pod_path(pod(w)), impl(w).dir,
                    conf[impl(w).who].dump());
      record("chain.ADD." + impl(w).who, sample_of(e));
      prev[w] = nlohmann::json::parse(e.out);
    }
    for (Who w : order) {
      if (w == kFloor) continue;
      nlohmann::json c = conf[impl(w).who];
      c["prevResult"] = prev[w];
      Exec e = call(impl(w).dir + "/macvlan", "CHECK", cid(w), lab_.pod_path(pod(w)), impl(w).dir,
                    c.dump());
      record("chain.CHECK." + impl(w).who, sample_of(e));
    }
    for (Who w : order) {
      if (w == kFloor) {
        record("chain.DEL.floor", {floor.del(pod(w))});
        continue;
      }
      nlohmann::json c = conf[impl(w).who];
      c["prevResult"] = prev[w];
      Exec e = call(impl(w).dir + "/macvlan", "DEL", cid(w), lab_.pod_path(pod(w)), impl(w).dir,
                    c.dump());
      record("chain.DEL." + impl(w).who, sample_of(e));
    }
  }
  std::fprintf(stderr, "  chain %d/%d\n", opt_.iterations, opt_.iterations);
}

// Scenario 3a: the macvlan plugins with a stub IPAM, for their own peak RSS and time.
void Bench::alone() {
  const std::string stub = stub_dir();
  for (int i = 0; i < opt_.rss_iterations; ++i) {
    const auto order = rotate_order(std::vector<const Impl*>{&ours_, &ref_}, i);
    std::map<const Impl*, nlohmann::json> prev;
    std::map<const Impl*, size_t> pod;
    for (size_t k = 0; k < order.size(); ++k)
      pod[order[k]] = (static_cast<size_t>(i) + k) % lab_.pod_count();
    auto conf = macvlan_config(net_, work_ + "/unused", "192.0.2.0/24", "192.0.2.10", "192.0.2.250",
                               "192.0.2.1");
    for (const Impl* impl : order) {
      Exec e = call(impl->dir + "/macvlan", "ADD", "alone-" + std::to_string(i),
                    lab_.pod_path(pod[impl]), stub, conf.dump());
      record("alone.ADD." + impl->who, sample_of(e));
      prev[impl] = nlohmann::json::parse(e.out);
    }
    for (const Impl* impl : order) {
      auto c = conf;
      c["prevResult"] = prev[impl];
      Exec e = call(impl->dir + "/macvlan", "DEL", "alone-" + std::to_string(i),
                    lab_.pod_path(pod[impl]), stub, c.dump());
      record("alone.DEL." + impl->who, sample_of(e));
    }
  }
}

// Writes `count` leases in host-local's on-disk format, as `count` ADDs would leave them.
void prefill_leases(const std::string& dir, const cni::IpAddress& first, int count) {
  std::filesystem::create_directories(dir);
  for (int k = 0; k < count; ++k) {
    std::ofstream f(dir + "/" + (first + k).str());
    f << "prefill-" << k << "\r\neth0";
  }
  if (count > 0) {
    std::ofstream f(dir + "/last_reserved_ip.0");
    f << (first + (count - 1)).str();
  }
}

// Scenario 2: host-local alone, ADD + DEL pairs at each lease count.
void Bench::host_local() {
  const auto first = cni::IpAddress::parse("10.99.0.2");
  const std::string name = "bench-hl";
  std::map<std::string, nlohmann::json> conf;
  for (int l : opt_.leases) {
    for (const Impl* impl : {&ours_, &ref_}) {
      const std::string data = work_ + "/hl-" + std::to_string(l) + "-" + impl->who;
      prefill_leases(data + "/" + name, first, l);
      conf[std::to_string(l) + impl->who] =
          macvlan_config(name, data, "10.99.0.0/16", "10.99.0.2", "10.99.255.254", "10.99.0.1");
    }
  }
  const std::string netns = lab_.pod_path(0);
  for (int i = 0; i < opt_.iterations; ++i) {
    if (i % 20 == 0) std::fprintf(stderr, "  host-local %d/%d\r", i, opt_.iterations);
    for (int l : rotate_order(opt_.leases, i)) {
      const std::string key = "hl" + std::to_string(l);
      const auto order = rotate_order(std::vector<const Impl*>{&ours_, &ref_}, i);
      for (const Impl* impl : order) {
        const std::string cid = "hl-" + std::to_string(i) + "-" + impl->who;
        const nlohmann::json& c = conf[std::to_string(l) + impl->who];
        Exec e = call(impl->dir + "/host-local", "ADD", cid, netns, impl->dir, c.dump());
        if (i == 0) {
          // The pre-filled leases must have been seen: the first ADD gets the next address.
          const std::string want = (first + l).str() + "/16";
          const std::string got =
              nlohmann::json::parse(e.out)["ips"][0]["address"].get<std::string>();
          if (got != want) {
            throw std::runtime_error(impl->who + " host-local at " + std::to_string(l) +
                                     " leases allocated " + got + ", expected " + want);
          }
        }
        record(key + ".ADD." + impl->who, sample_of(e));
      }
      for (const Impl* impl : order) {
        const std::string cid = "hl-" + std::to_string(i) + "-" + impl->who;
        Exec e = call(impl->dir + "/host-local", "DEL", cid, netns, impl->dir,
                      conf[std::to_string(l) + impl->who].dump());
        record(key + ".DEL." + impl->who, sample_of(e));
      }
    }
  }
  std::fprintf(stderr, "  host-local %d/%d\n", opt_.iterations, opt_.iterations);
}

RunInfo machine_info(const Options& opt) {
  RunInfo info;
  char date[64];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
  info.date = date;
  utsname u{};
  uname(&u);
  info.kernel = u.release;
  info.nproc = sysconf(_SC_NPROCESSORS_ONLN);
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      info.cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  info.load_start = read_first_line("/proc/loadavg").substr(0, 14);
  info.ours_dir = opt.ours_dir;
  if (!opt.write_doc.empty()) {
    // The document names our binaries relative to the tree it lives in (<top>/docs/...), not
    // by this machine's absolute path.
    namespace fs = std::filesystem;
    fs::path top = fs::absolute(opt.write_doc).parent_path().parent_path();
    fs::path rel = fs::absolute(opt.ours_dir).lexically_normal().lexically_relative(top);
    if (!rel.empty() && *rel.begin() != "..") info.ours_dir = rel.string();
  }
  info.ref_dir = opt.ref_dir;
  info.revision = opt.revision;
  info.build_type = STRAIT_BUILD_TYPE;
  info.iterations = opt.iterations;
  info.rss_iterations = opt.rss_iterations;
  info.leases = opt.leases;
  try {
    info.ref_version =
        cni::spawn({"/usr/bin/dpkg-query", "-W", "-f=${Version}", "containernetworking-plugins"},
                   {{"PATH", "/usr/bin:/bin"}}, "")
            .out;
  } catch (const std::exception&) {
    info.ref_version = "(version unknown)";
  }
  return info;
}

int run(int argc, char** argv) {
  Options opt;
  opt.ours_dir = (std::filesystem::path(dirname_of_self()) / ".." / "bin").lexically_normal();
  opt.prefix = "sbench" + std::to_string(getpid());
  CLI::App app{"strait-bench: our macvlan + host-local beside the reference plugins"};
  app.add_option("-n,--iterations", opt.iterations, "iterations of the timed scenarios")
      ->check(CLI::PositiveNumber);
  app.add_option("--rss-iterations", opt.rss_iterations, "iterations of macvlan-alone and VERSION")
      ->check(CLI::PositiveNumber);
  app.add_option("--leases", opt.leases, "lease counts for host-local (first = baseline)")
      ->delimiter(',');
  app.add_option("--pods", opt.pods, "pod netns in the pool (at least 3)")
      ->check(CLI::Range(3, 64));
  app.add_option("--ours", opt.ours_dir, "directory of our macvlan and host-local");
  app.add_option("--ref", opt.ref_dir, "directory of the reference plugins");
  app.add_option("--prefix", opt.prefix, "prefix of every netns name (unique per run)");
  app.add_option("--work", opt.work, "work directory (default: a new /tmp dir, removed)");
  app.add_option("--write-doc", opt.write_doc, "also write the results to this markdown file");
  app.add_option("--revision", opt.revision, "what ours was built from (git describe)");
  app.add_option("--scenarios", opt.scenarios, "version,chain,alone,host-local")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  std::sort(opt.leases.begin(), opt.leases.end());

  if (geteuid() != 0) throw std::runtime_error("strait-bench needs root (network namespaces)");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  RunInfo info = machine_info(opt);
  const double started = now_ms();
  WorkDir work(opt.work);
  std::fprintf(stderr, "strait-bench: namespaces %s-*, work dir %s\n", opt.prefix.c_str(),
               work.path().c_str());
  Lab lab(opt.prefix, opt.pods);
  SpawnClient spawner(dirname_of_self() + "/strait-bench-spawn", lab.host_path());
  Bench bench(opt, lab, spawner, work.path());
  auto wants = [&](const std::string& s) {
    return std::find(opt.scenarios.begin(), opt.scenarios.end(), s) != opt.scenarios.end();
  };
  if (wants("version")) {
    std::fprintf(stderr, "strait-bench: VERSION execs\n");
    bench.version();
  }
  if (wants("chain")) {
    std::fprintf(stderr, "strait-bench: macvlan + host-local ADD/CHECK/DEL and kernel floor\n");
    bench.chain();
  }
  if (wants("alone")) {
    std::fprintf(stderr, "strait-bench: macvlan alone (stub IPAM)\n");
    bench.alone();
  }
  if (wants("host-local")) {
    std::fprintf(stderr, "strait-bench: host-local alone\n");
    bench.host_local();
  }
  info.load_end = read_first_line("/proc/loadavg").substr(0, 14);
  info.wall_s = (now_ms() - started) / 1e3;

  std::cout << "strait-bench " << info.date << ", " << info.cpu << " x" << info.nproc << ", kernel "
            << info.kernel << ", load " << info.load_start << " -> " << info.load_end << "\n\n"
            << render_tables(bench.results(), info);
  if (!opt.write_doc.empty()) {
    write_doc(opt.write_doc, render_doc(bench.results(), info));
    std::cout << "\nwrote " << opt.write_doc << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace strait::bench

int main(int argc, char** argv) {
  try {
    return strait::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strait-bench: %s\n", e.what());
    return 1;
  }
}
