// bandwidth-bench: accuracy and latency under load of our bandwidth plugin beside the reference
// (Debian's /usr/lib/cni/bandwidth), on the same veth pod in the same run, and ours on a macvlan
// pod; plus ADD/DEL exec times of both. `scripts/bench bandwidth` runs it.
//
// The lab (every device in namespaces made here, none in the machine's): a "host" netns; a
// "far" netns joined to it by a veth (10.78.0.0/24, the host routes) running the iperf3 server;
// a veth pod made by the reference ptp plugin (10.77.0.0/24); a macvlan pod made by our macvlan
// on a veth master whose other end is in "far" (192.0.2.0/24). For each rate, congestion
// control and direction, each contestant in rotating order: ADD bandwidth with both limits at
// the rate and burst = 4 ms at the rate (what tc-tbf(8) calls the least for a timer of 250 Hz),
// iperf3 for --seconds (from the pod, -R for ingress), and from its second second a ping from
// the pod to the far end every 50 ms (SCHED_FIFO, so that it measures the network's queues and
// not the scheduler's), then DEL. Goodput is iperf3's received payload rate over the configured
// rate (L2 shaping caps it at 1448/1514 = 0.956); RTT is the median of the pings. Medians over
// --reps runs.
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
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/doc_section.h"
#include "bench/lab.h"
#include "bench/spawn_client.h"
#include "bench/stats.h"
#include "libcni/process/invoke.h"

namespace strait::bench {
namespace {

using nlohmann::json;

struct Options {
  int seconds = 6;
  int reps = 3;
  int execs = 100;
  std::vector<int> rates_mbit = {10, 100, 500};
  std::vector<std::string> ccs = {"bbr", "cubic"};  // this machine's default first
  std::string ours_dir;
  std::string ref_dir = "/usr/lib/cni";
  std::string prefix;
  std::string work;
  std::string write_doc;
  std::string revision = "unknown revision";
};

std::string ip() { return ip_binary(); }

// Runs argv inside netns `ns` (ip netns exec) and returns its stdout; throws on failure.
std::string in_ns(const std::string& ns, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {ip(), "netns", "exec", ns});
  return run_checked(argv);
}

class BandwidthLab {
 public:
  BandwidthLab(const std::string& prefix, const std::string& work) : prefix_(prefix), work_(work) {
    try {
      for (const char* n : {"host", "far", "vpod", "mpod"}) add_netns(name(n));
      run_checked({ip(), "-n", name("host"), "link", "add", "uplink", "type", "veth", "peer",
                   "name", "up0", "netns", name("far")});
      run_checked({ip(), "-n", name("host"), "addr", "add", "10.78.0.1/24", "dev", "uplink"});
      run_checked({ip(), "-n", name("host"), "link", "set", "uplink", "up"});
      run_checked({ip(), "-n", name("far"), "addr", "add", "10.78.0.2/24", "dev", "up0"});
      run_checked({ip(), "-n", name("far"), "link", "set", "up0", "up"});
      run_checked({ip(), "-n", name("far"), "route", "add", "10.77.0.0/24", "via", "10.78.0.1"});
      in_ns(name("host"), {"/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"});
      // The macvlan master, its other end in "far" holding the macvlan pod's gateway.
      run_checked({ip(), "-n", name("host"), "link", "add", "mst0", "type", "veth", "peer", "name",
                   "mv0", "netns", name("far")});
      run_checked({ip(), "-n", name("host"), "link", "set", "mst0", "up"});
      run_checked({ip(), "-n", name("far"), "addr", "add", "192.0.2.1/24", "dev", "mv0"});
      run_checked({ip(), "-n", name("far"), "link", "set", "mv0", "up"});
      in_ns(name("far"),
            {"/usr/bin/iperf3", "-s", "-D", "-p", "5201", "--pidfile", work_ + "/iperf3.pid"});
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    } catch (...) {
      teardown();
      throw;
    }
  }
  ~BandwidthLab() { teardown(); }
  BandwidthLab(const BandwidthLab&) = delete;
  BandwidthLab& operator=(const BandwidthLab&) = delete;

  std::string name(const std::string& what) const { return prefix_ + "-" + what; }
  std::string path(const std::string& what) const { return "/run/netns/" + name(what); }

 private:
  void add_netns(const std::string& n) {
    run_checked({ip(), "netns", "add", n});
    created_.push_back(n);
    run_checked({ip(), "-n", n, "link", "set", "lo", "up"});
  }
  void teardown() {
    std::ifstream pid(work_ + "/iperf3.pid");
    if (int p = 0; pid >> p && p > 0) kill(p, SIGTERM);
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      try {
        run_checked({ip(), "netns", "delete", *it});
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bandwidth-bench: cleanup: %s\n", e.what());
      }
    }
    created_.clear();
  }

  std::string prefix_, work_;
  std::vector<std::string> created_;
};

// A pod and what its first plugin returned.
struct Pod {
  std::string label;    // "veth (reference ptp)", "macvlan (ours)"
  std::string netns;    // path
  std::string ns_name;  // for ip netns exec
  std::string target;   // the far end to ping and to run iperf3 against
  json prev;
};

struct Contestant {
  std::string key;  // "ref", "ours", "ours-macvlan"
  std::string binary;
  const Pod* pod;
};

struct Run {
  double goodput = NAN;  // ratio of the configured rate
  double rtt_ms = NAN;   // median
  double loss = NAN;     // of the pings
};

std::vector<double> ping_times(const std::string& out, int* received) {
  std::vector<double> t;
  static const std::regex re("time=([0-9.]+) ms");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator();
       ++it) {
    t.push_back(std::stod((*it)[1].str()));
  }
  *received = static_cast<int>(t.size());
  return t;
}

class Bench {
 public:
  Bench(const Options& opt, BandwidthLab& lab, SpawnClient& spawner, const std::string& work)
      : opt_(opt), lab_(lab), spawner_(spawner), work_(work) {}

  void make_pods() {
    veth_ = {"veth (reference ptp)", lab_.path("vpod"), lab_.name("vpod"), "10.78.0.2", {}};
    const json ptp = {{"cniVersion", "1.0.0"},
                      {"name", "bwbench"},
                      {"type", "ptp"},
                      {"ipam",
                       {{"type", "host-local"},
                        {"subnet", "10.77.0.0/24"},
                        {"routes", json::array({{{"dst", "0.0.0.0/0"}}})},
                        {"dataDir", work_ + "/ptp-leases"}}}};
    veth_.prev = add_first(opt_.ref_dir + "/ptp", opt_.ref_dir, ptp, veth_);
    macvlan_ = {"macvlan (ours)", lab_.path("mpod"), lab_.name("mpod"), "192.0.2.1", {}};
    const json mv = {{"cniVersion", "1.0.0"},
                     {"name", "bwbench-mv"},
                     {"type", "macvlan"},
                     {"master", "mst0"},
                     {"ipam",
                      {{"type", "host-local"},
                       {"dataDir", work_ + "/mv-leases"},
                       {"ranges", json::array({json::array({{{"subnet", "192.0.2.0/24"},
                                                             {"rangeStart", "192.0.2.10"},
                                                             {"rangeEnd", "192.0.2.20"},
                                                             {"gateway", "192.0.2.1"}}})})}}}};
    macvlan_.prev = add_first(opt_.ours_dir + "/macvlan", opt_.ours_dir, mv, macvlan_);
  }

  void accuracy();
  void burst();
  void execs();
  std::string report(const std::string& header) const;

 private:
  json add_first(const std::string& binary, const std::string& cni_path, const json& conf,
                 const Pod& pod) {
    Exec e = spawner_.run(binary, env("ADD", "bench-first-" + pod.ns_name, pod.netns, cni_path),
                          conf.dump());
    if (e.stats.exit_code != 0) throw std::runtime_error(binary + " ADD failed: " + e.out + e.err);
    return json::parse(e.out);
  }

  std::vector<std::string> env(const std::string& cmd, const std::string& cid,
                               const std::string& netns, const std::string& cni_path) const {
    return {"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + cid, "CNI_NETNS=" + netns,
            "CNI_IFNAME=eth0",    "CNI_PATH=" + cni_path,   "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  }

  json bw_conf(const Pod& pod, uint64_t rate, uint64_t burst) const {
    return {{"cniVersion", "1.0.0"}, {"name", "bwbench"},     {"type", "bandwidth"},
            {"ingressRate", rate},   {"ingressBurst", burst}, {"egressRate", rate},
            {"egressBurst", burst},  {"prevResult", pod.prev}};
  }

  Exec plugin(const Contestant& c, const std::string& cmd, const json& conf,
              const std::string& cid) {
    Exec e = spawner_.run(c.binary, env(cmd, cid, c.pod->netns, opt_.ref_dir), conf.dump());
    if (e.stats.exit_code != 0) {
      throw std::runtime_error(c.key + " bandwidth " + cmd + " failed: " + e.out + e.err);
    }
    return e;
  }

  Run measure(const Contestant& c, uint64_t rate, uint64_t burst, bool ingress,
              const std::string& cc, int seconds);
  void clear_host_end(const Pod& pod);

  const Options& opt_;
  BandwidthLab& lab_;
  SpawnClient& spawner_;
  std::string work_;
  Pod veth_, macvlan_;
  // "<rate>|<cc>|<dir>|<key>" -> runs
  std::map<std::string, std::vector<Run>> runs_;
  std::map<std::string, std::vector<Run>> burst_runs_;
  std::map<std::string, Series> exec_;

 public:
  std::vector<Contestant> contestants() const {
    return {{"ref", opt_.ref_dir + "/bandwidth", &veth_},
            {"ours", opt_.ours_dir + "/bandwidth", &veth_},
            {"ours-macvlan", opt_.ours_dir + "/bandwidth", &macvlan_}};
  }
};

Run Bench::measure(const Contestant& c, uint64_t rate, uint64_t burst, bool ingress,
                   const std::string& cc, int seconds) {
  const std::string cid = "bwbench-" + c.key;
  plugin(c, "ADD", bw_conf(*c.pod, rate, burst), cid);
  Run r;
  std::string iperf_out;
  std::thread load([&] {
    std::vector<std::string> argv = {ip(),
                                     "netns",
                                     "exec",
                                     c.pod->ns_name,
                                     "/usr/bin/iperf3",
                                     "-c",
                                     c.pod->target,
                                     "-p",
                                     "5201",
                                     "-t",
                                     std::to_string(seconds),
                                     "-C",
                                     cc,
                                     "-J"};
    if (ingress) argv.push_back("-R");
    cni::ExecResult e = cni::spawn(argv, {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
    iperf_out = e.out;
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int pings = (seconds - 2) * 20;
  cni::ExecResult p = cni::spawn(
      {ip(), "netns", "exec", c.pod->ns_name, "/usr/bin/chrt", "-f", "10", "/usr/bin/ping", "-n",
       "-i", "0.05", "-c", std::to_string(pings), "-W", "1", c.pod->target},
      {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
  load.join();
  int received = 0;
  std::vector<double> t = ping_times(p.out, &received);
  r.rtt_ms = quantile(t, 0.5);
  r.loss = 1.0 - static_cast<double>(received) / pings;
  // A failed iperf3 (it reports an "error" with an empty "end") is a missing run, left out of
  // the medians and counted, not the end of the bench.
  const json j = json::parse(iperf_out, nullptr, false);
  const json* bps = nullptr;
  if (j.is_object() && j.contains("end") && j["end"].is_object() &&
      j["end"].contains("sum_received") && j["end"]["sum_received"].is_object() &&
      j["end"]["sum_received"].contains("bits_per_second")) {
    bps = &j["end"]["sum_received"]["bits_per_second"];
  }
  if (bps && bps->is_number()) {
    r.goodput = bps->get<double>() / static_cast<double>(rate);
  } else {
    std::fprintf(
        stderr, "\nbandwidth-bench: %s %s: iperf3 gave no goodput (%s)\n", c.key.c_str(),
        ingress ? "ingress" : "egress",
        j.is_object() ? j.value("error", std::string("no error given")).c_str() : "not JSON");
  }
  plugin(c, "DEL", bw_conf(*c.pod, rate, burst), cid);
  clear_host_end(*c.pod);
  return r;
}

// The reference's DEL deletes only the ifb (upstream: the host veth's qdiscs go with the veth),
// so the next contestant on the same pod finds them: the bench removes them (tc), as the veth's
// deletion would.
void Bench::clear_host_end(const Pod& pod) {
  for (const auto& i : pod.prev.at("interfaces")) {
    if (i.contains("sandbox")) continue;
    const std::string dev = i.at("name");
    for (const char* parent : {"root", "ingress"}) {
      cni::spawn({ip(), "netns", "exec", lab_.name("host"), "/usr/sbin/tc", "qdisc", "del", "dev",
                  dev, parent},
                 {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}, "");
    }
  }
}

template <class T>
std::vector<T> rotate(std::vector<T> v, int i) {
  std::rotate(v.begin(), v.begin() + (i % static_cast<int>(v.size())), v.end());
  return v;
}

std::string key(int mbit, const std::string& cc, bool ingress, const std::string& who) {
  return std::to_string(mbit) + "|" + cc + "|" + (ingress ? "in" : "eg") + "|" + who;
}

void Bench::accuracy() {
  int i = 0;
  for (int rep = 0; rep < opt_.reps; ++rep) {
    for (int mbit : opt_.rates_mbit) {
      const uint64_t rate = static_cast<uint64_t>(mbit) * 1000000;
      const uint64_t burst = std::max<uint64_t>(rate / 250, 3028 * 8);
      for (const auto& cc : opt_.ccs) {
        for (bool ingress : {false, true}) {
          std::fprintf(stderr, "  rep %d/%d %d Mbit/s %s %s   \r", rep + 1, opt_.reps, mbit,
                       cc.c_str(), ingress ? "ingress" : "egress");
          for (const Contestant& c : rotate(contestants(), i++)) {
            runs_[key(mbit, cc, ingress, c.key)].push_back(
                measure(c, rate, burst, ingress, cc, opt_.seconds));
          }
        }
      }
    }
  }
  std::fprintf(stderr, "\n");
}

// What a runtime sends (containerd: 2^32-1 bits of burst, kubernetes #90838), at each rate.
void Bench::burst() {
  int i = 0;
  for (int mbit : opt_.rates_mbit) {
    const uint64_t rate = static_cast<uint64_t>(mbit) * 1000000;
    for (bool ingress : {false, true}) {
      std::fprintf(stderr, "  %d Mbit/s %s   \r", mbit, ingress ? "ingress" : "egress");
      for (const Contestant& c : rotate(contestants(), i++)) {
        burst_runs_[key(mbit, opt_.ccs.front(), ingress, c.key)].push_back(
            measure(c, rate, 4294967295ull, ingress, opt_.ccs.front(), opt_.seconds));
      }
    }
  }
  std::fprintf(stderr, "\n");
}

void Bench::execs() {
  for (int i = 0; i < opt_.execs; ++i) {
    if (i % 20 == 0) std::fprintf(stderr, "  exec %d/%d\r", i, opt_.execs);
    for (const Contestant& c : rotate(contestants(), i)) {
      const std::string cid = "bwexec-" + c.key;
      const json conf = bw_conf(*c.pod, 100000000, 400000);
      exec_["ADD." + c.key].add({plugin(c, "ADD", conf, cid).ms()});
      exec_["DEL." + c.key].add({plugin(c, "DEL", conf, cid).ms()});
      clear_host_end(*c.pod);
    }
  }
  std::fprintf(stderr, "  exec %d/%d\n", opt_.execs, opt_.execs);
}

double median_of(const std::vector<Run>& v, double Run::*f) {
  std::vector<double> x;
  for (const auto& r : v) {
    if (!std::isnan(r.*f)) x.push_back(r.*f);
  }
  return quantile(x, 0.5);
}

std::string Bench::report(const std::string& header) const {
  std::ostringstream o;
  o << header;
  o << "\n### Goodput (of the configured rate) and ping RTT while loaded, medians of " << opt_.reps
    << " runs of " << opt_.seconds << " s\n\n";
  o << "| rate | cc | loaded direction | goodput ref | goodput ours | goodput ours (macvlan) | "
       "RTT ms ref | RTT ms ours | ours/ref | RTT ms ours (macvlan) | ping loss ref / ours / "
       "macvlan |\n";
  o << "|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n";
  std::vector<std::string> targets;
  for (int mbit : opt_.rates_mbit) {
    for (const auto& cc : opt_.ccs) {
      for (bool ingress : {false, true}) {
        auto get = [&](const std::string& who, double Run::*f) {
          auto it = runs_.find(key(mbit, cc, ingress, who));
          return it == runs_.end() ? NAN : median_of(it->second, f);
        };
        const double g_ref = get("ref", &Run::goodput), g_ours = get("ours", &Run::goodput),
                     g_mv = get("ours-macvlan", &Run::goodput);
        const double r_ref = get("ref", &Run::rtt_ms), r_ours = get("ours", &Run::rtt_ms),
                     r_mv = get("ours-macvlan", &Run::rtt_ms);
        const std::string dir = ingress ? "ingress (to the pod)" : "egress (from the pod)";
        o << "| " << mbit << " Mbit/s | " << cc << " | " << dir << " | " << fmt(g_ref) << " | "
          << fmt(g_ours) << " | " << fmt(g_mv) << " | " << fmt(r_ref) << " | " << fmt(r_ours)
          << " | " << fmt(r_ours / r_ref) << "x | " << fmt(r_mv) << " | "
          << fmt(100 * get("ref", &Run::loss), 0) << "% / " << fmt(100 * get("ours", &Run::loss), 0)
          << "% / " << fmt(100 * get("ours-macvlan", &Run::loss), 0) << "% |\n";
        const std::string what =
            std::to_string(mbit) + " Mbit/s " + cc + " " + (ingress ? "ingress" : "egress");
        auto verdict = [](bool met) { return met ? "**met**" : "**missed**"; };
        targets.push_back("| " + what + " | goodput ours >= 0.93 | " + fmt(g_ours) + " | " +
                          verdict(g_ours >= 0.93) + " |");
        targets.push_back("| " + what + " | goodput ours (macvlan) >= 0.93 | " + fmt(g_mv) + " | " +
                          verdict(g_mv >= 0.93) + " |");
        targets.push_back("| " + what + " | loaded RTT ours <= 0.5x reference | " + fmt(r_ours) +
                          " vs " + fmt(r_ref) + " ms = " + fmt(r_ours / r_ref) + "x | " +
                          verdict(r_ours <= 0.5 * r_ref) + " |");
      }
    }
  }
  o << "\n### Targets\n\n| condition | target | figure | |\n|---|---|--:|---|\n";
  for (const auto& t : targets) o << t << "\n";

  o << "\n### A runtime's burst (2^32-1 bits, as containerd sends), " << opt_.ccs.front()
    << ", one run each\n\n";
  o << "| rate | loaded direction | goodput ref | goodput ours | goodput ours (macvlan) | RTT ms "
       "ref | RTT ms ours | RTT ms ours (macvlan) |\n|--:|---|--:|--:|--:|--:|--:|--:|\n";
  for (int mbit : opt_.rates_mbit) {
    for (bool ingress : {false, true}) {
      auto get = [&](const std::string& who, double Run::*f) {
        auto it = burst_runs_.find(key(mbit, opt_.ccs.front(), ingress, who));
        return it == burst_runs_.end() ? NAN : median_of(it->second, f);
      };
      o << "| " << mbit << " Mbit/s | " << (ingress ? "ingress" : "egress") << " | "
        << fmt(get("ref", &Run::goodput)) << " | " << fmt(get("ours", &Run::goodput)) << " | "
        << fmt(get("ours-macvlan", &Run::goodput)) << " | " << fmt(get("ref", &Run::rtt_ms))
        << " | " << fmt(get("ours", &Run::rtt_ms)) << " | "
        << fmt(get("ours-macvlan", &Run::rtt_ms)) << " |\n";
    }
  }

  o << "\n### ADD and DEL exec time (" << opt_.execs
    << " each, interleaved, both limits set, through the fork server in the host netns)\n\n";
  o << "| operation | ref p50 ms | ref p99 | ours p50 ms | ours p99 | ours/ref p50 | ours on "
       "macvlan p50 |\n|---|--:|--:|--:|--:|--:|--:|\n";
  for (const char* op : {"ADD", "DEL"}) {
    auto s = [&](const std::string& who) -> const Series* {
      auto it = exec_.find(std::string(op) + "." + who);
      return it == exec_.end() ? nullptr : &it->second;
    };
    if (!s("ref") || !s("ours")) continue;
    o << "| " << op << " | " << fmt(s("ref")->p50()) << " | " << fmt(s("ref")->p99()) << " | "
      << fmt(s("ours")->p50()) << " | " << fmt(s("ours")->p99()) << " | "
      << fmt(s("ours")->p50() / s("ref")->p50()) << "x | "
      << (s("ours-macvlan") ? fmt(s("ours-macvlan")->p50()) : "-") << " |\n";
  }
  return o.str();
}

constexpr const char* kBegin =
    "<!-- bandwidth-bench: begin (scripts/bench bandwidth --write-doc) -->";
constexpr const char* kEnd = "<!-- bandwidth-bench: end -->";

int run(int argc, char** argv) {
  Options opt;
  opt.ours_dir = (std::filesystem::path(dirname_of_self()) / ".." / "bin").lexically_normal();
  opt.prefix = "sbw" + std::to_string(getpid());
  CLI::App app{"bandwidth-bench: our bandwidth beside the reference, goodput and loaded RTT"};
  app.add_option("--seconds", opt.seconds, "iperf3 seconds per run")->check(CLI::Range(4, 60));
  app.add_option("--reps", opt.reps, "runs per condition")->check(CLI::PositiveNumber);
  app.add_option("--execs", opt.execs, "ADD/DEL pairs for exec times")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rates", opt.rates_mbit, "rates in Mbit/s")->delimiter(',');
  app.add_option("--cc", opt.ccs, "congestion controls (first: also the burst rows)")
      ->delimiter(',');
  app.add_option("--ours", opt.ours_dir, "directory of our bandwidth and macvlan");
  app.add_option("--ref", opt.ref_dir, "directory of the reference plugins");
  app.add_option("--prefix", opt.prefix, "prefix of every netns name");
  app.add_option("--work", opt.work, "work directory (default: a new /tmp dir, removed)");
  app.add_option("--write-doc", opt.write_doc, "also write the section into this markdown file");
  app.add_option("--revision", opt.revision, "what ours was built from (git describe)");
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) throw std::runtime_error("bandwidth-bench needs root (network namespaces)");
  signal(SIGPIPE, SIG_IGN);

  const std::string load_start = loadavg();
  const std::string date = utc_date();
  utsname u{};
  uname(&u);

  WorkDir work(opt.work);
  BandwidthLab lab(opt.prefix, work.path());
  SpawnClient spawner(dirname_of_self() + "/strait-bench-spawn", lab.path("host"));
  Bench bench(opt, lab, spawner, work.path());
  bench.make_pods();
  std::fprintf(stderr, "bandwidth-bench: goodput and loaded RTT\n");
  bench.accuracy();
  std::fprintf(stderr, "bandwidth-bench: a runtime's burst\n");
  bench.burst();
  std::fprintf(stderr, "bandwidth-bench: ADD/DEL exec times\n");
  bench.execs();
  const std::string load_end = loadavg();

  std::ostringstream h;
  h << "## bandwidth (issue 15), " << date << "\n\n"
    << "`scripts/bench bandwidth` (bench/bandwidth_bench.cpp): ours (" << opt.revision
    << ") and the reference `" << opt.ref_dir
    << "/bandwidth` on the same veth pod (made by the reference ptp), interleaved in a "
       "rotating order, and ours on a macvlan pod; kernel "
    << u.release << ", " << sysconf(_SC_NPROCESSORS_ONLN)
    << " CPUs shared with other builds; load average " << load_start << " at the start, "
    << load_end
    << " at the end. Both limits at the rate, burst 4 ms at the rate; iperf3 from "
       "the pod to a far netns (-R for ingress), pings from the pod every 50 ms under "
       "SCHED_FIFO from the second second on. Goodput is iperf3's payload rate over the "
       "configured rate (1448/1514 = 0.956 is the ceiling of L2 shaping).\n";
  const std::string text = bench.report(h.str());
  publish(text, opt.write_doc, kBegin, kEnd);
  return 0;
}

}  // namespace
}  // namespace strait::bench

int main(int argc, char** argv) {
  return strait::bench::guarded_main("bandwidth-bench", strait::bench::run, argc, argv);
}
