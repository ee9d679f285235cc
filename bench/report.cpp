#include "bench/report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace strait::bench {

namespace {

std::string fixed(double v, int digits = 2) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string ratio(double num, double den) {
  if (std::isnan(num) || std::isnan(den) || den <= 0) return "-";
  return fixed(num / den) + "x";
}

const Series* find(const Results& r, const std::string& key) {
  auto it = r.find(key);
  return it == r.end() || it->second.empty() ? nullptr : &it->second;
}

double p50(const Results& r, const std::string& key) {
  const Series* s = find(r, key);
  return s ? s->p50() : NAN;
}

double get(const Results& r, const std::string& key, double (Series::*f)() const) {
  const Series* s = find(r, key);
  return s ? (s->*f)() : NAN;
}

struct Row {
  std::string label;
  std::string key;        // "<scenario>.<operation>", completed with .ours / .ref
  std::string floor_key;  // "" for none
};

std::vector<Row> latency_rows(const RunInfo& info) {
  std::vector<Row> rows = {
      {"macvlan + host-local ADD", "chain.ADD", "chain.ADD.floor"},
      {"macvlan + host-local CHECK", "chain.CHECK", ""},
      {"macvlan + host-local DEL", "chain.DEL", "chain.DEL.floor"},
      {"macvlan alone ADD (stub IPAM)", "alone.ADD", "chain.ADD.floor"},
      {"macvlan alone DEL (stub IPAM)", "alone.DEL", "chain.DEL.floor"},
  };
  for (int l : info.leases) {
    rows.push_back({"host-local ADD, " + std::to_string(l) + " leases",
                    "hl" + std::to_string(l) + ".ADD", ""});
    rows.push_back({"host-local DEL, " + std::to_string(l) + " leases",
                    "hl" + std::to_string(l) + ".DEL", ""});
  }
  rows.push_back({"macvlan VERSION (exec + start-up)", "version.macvlan", ""});
  rows.push_back({"host-local VERSION (exec + start-up)", "version.host-local", ""});
  return rows;
}

std::string latency_table(const Results& r, const RunInfo& info) {
  std::ostringstream o;
  o << "| operation (ms) | ours p50 | ours p99 | ref p50 | ref p99 | ours/ref p50 | "
       "kernel floor p50 | ours/floor p50 | ref/floor p50 |\n"
    << "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const Row& row : latency_rows(info)) {
    const std::string ours = row.key + ".ours", ref = row.key + ".ref";
    if (!find(r, ours) && !find(r, ref)) continue;
    const double floor = row.floor_key.empty() ? NAN : p50(r, row.floor_key);
    o << "| " << row.label << " | " << fixed(p50(r, ours)) << " | "
      << fixed(get(r, ours, &Series::p99)) << " | " << fixed(p50(r, ref)) << " | "
      << fixed(get(r, ref, &Series::p99)) << " | " << ratio(p50(r, ours), p50(r, ref)) << " | "
      << fixed(floor) << " | " << ratio(p50(r, ours), floor) << " | " << ratio(p50(r, ref), floor)
      << " |\n";
  }
  if (find(r, "chain.ADD.floor")) {
    o << "\nKernel floor (in-process netlink, no exec; p50 / p99): ADD = create the macvlan in "
         "the pod netns + address + up + default route: "
      << fixed(p50(r, "chain.ADD.floor")) << " / " << fixed(get(r, "chain.ADD.floor", &Series::p99))
      << " ms; DEL = delete the link: " << fixed(p50(r, "chain.DEL.floor")) << " / "
      << fixed(get(r, "chain.DEL.floor", &Series::p99)) << " ms.\n";
  }
  if (find(r, "version.stub.stub")) {
    o << "Exec floor: a static do-nothing binary (the stub IPAM, VERSION) takes "
      << fixed(p50(r, "version.stub.stub")) << " ms p50 through the same client.\n";
  }
  return o.str();
}

std::string rss_table(const Results& r, const RunInfo& info) {
  std::vector<Row> rows = {
      {"macvlan ADD, plugin alone (stub IPAM)", "alone.ADD", ""},
  };
  if (!info.leases.empty()) {
    const std::string lo = std::to_string(info.leases.front());
    const std::string hi = std::to_string(info.leases.back());
    rows.push_back({"host-local ADD, IPAM alone, " + lo + " leases", "hl" + lo + ".ADD", ""});
    if (hi != lo) {
      rows.push_back({"host-local ADD, IPAM alone, " + hi + " leases", "hl" + hi + ".ADD", ""});
    }
  }
  rows.push_back({"macvlan + host-local ADD (the larger of the two)", "chain.ADD", ""});
  rows.push_back({"macvlan VERSION", "version.macvlan", ""});
  rows.push_back({"host-local VERSION", "version.host-local", ""});

  std::ostringstream o;
  o << "| exec (peak RSS, MB) | ours p50 | ours max | ref p50 | ref max | ours/ref p50 |\n"
    << "|---|--:|--:|--:|--:|--:|\n";
  for (const Row& row : rows) {
    const std::string ours = row.key + ".ours", ref = row.key + ".ref";
    if (!find(r, ours) && !find(r, ref)) continue;
    const double a = get(r, ours, &Series::rss_p50_mb), b = get(r, ref, &Series::rss_p50_mb);
    o << "| " << row.label << " | " << fixed(a) << " | " << fixed(get(r, ours, &Series::rss_max_mb))
      << " | " << fixed(b) << " | " << fixed(get(r, ref, &Series::rss_max_mb)) << " | "
      << ratio(a, b) << " |\n";
  }
  if (find(r, "version.stub.stub")) {
    o << "\nMeasurement floor: the static stub peaks at "
      << fixed(get(r, "version.stub.stub", &Series::rss_p50_mb))
      << " MB (a spawned child starts with its spawner's peak, see bench/spawn_protocol.h).\n";
  }
  return o.str();
}

std::string cpu_table(const Results& r, const RunInfo& info) {
  std::ostringstream o;
  o << "| exec (p50) | ours CPU ms | ref CPU ms | ours/ref | ours ctx sw | ref ctx sw |\n"
    << "|---|--:|--:|--:|--:|--:|\n";
  for (const Row& row : latency_rows(info)) {
    const std::string ours = row.key + ".ours", ref = row.key + ".ref";
    if (!find(r, ours) && !find(r, ref)) continue;
    const double a = get(r, ours, &Series::cpu_p50), b = get(r, ref, &Series::cpu_p50);
    o << "| " << row.label << " | " << fixed(a) << " | " << fixed(b) << " | " << ratio(a, b)
      << " | " << fixed(get(r, ours, &Series::nvcsw_p50), 0) << " | "
      << fixed(get(r, ref, &Series::nvcsw_p50), 0) << " |\n";
  }
  o << "\nCPU = user + system time from wait4, children included (macvlan's IPAM exec); "
       "ctx sw = voluntary context switches (the process blocked: netlink waits, locks, "
       "the kernel's RCU grace periods, a child's exit).\n";
  return o.str();
}

struct Target {
  std::string what;
  double measured;  // a ratio
  double limit;     // NaN: shown for context, not a target
  std::string detail;
};

std::string targets_table(const Results& r, const RunInfo& info) {
  std::vector<Target> targets;
  const double add = p50(r, "chain.ADD.ours");
  targets.push_back({"ADD p50 <= 0.5x reference", add / p50(r, "chain.ADD.ref"), 0.5,
                     fixed(add) + " vs " + fixed(p50(r, "chain.ADD.ref")) + " ms"});
  targets.push_back({"ADD p50 <= 1.5x kernel floor", add / p50(r, "chain.ADD.floor"), 1.5,
                     fixed(add) + " vs " + fixed(p50(r, "chain.ADD.floor")) + " ms"});
  // Any exec'd plugin pays two execs (itself and its IPAM) on top of the kernel's work.
  const double exec_floor = p50(r, "chain.ADD.floor") + 2 * p50(r, "version.stub.stub");
  targets.push_back({"(context) ADD p50 vs kernel floor + 2 execs of a static no-op binary",
                     add / exec_floor, NAN, fixed(add) + " vs " + fixed(exec_floor) + " ms"});
  const double del = p50(r, "chain.DEL.ours");
  targets.push_back({"DEL p50 <= 1.1x kernel link-delete", del / p50(r, "chain.DEL.floor"), 1.1,
                     fixed(del) + " vs " + fixed(p50(r, "chain.DEL.floor")) + " ms"});
  if (info.leases.size() >= 2) {
    const std::string lo = std::to_string(info.leases.front());
    const std::string hi = std::to_string(info.leases.back());
    const double a = p50(r, "hl" + hi + ".ADD.ours"), b = p50(r, "hl" + lo + ".ADD.ours");
    const double ra = p50(r, "hl" + hi + ".ADD.ref"), rb = p50(r, "hl" + lo + ".ADD.ref");
    targets.push_back({"host-local ADD p50 at " + hi + " leases <= 1.2x at " + lo, a / b, 1.2,
                       fixed(a) + " vs " + fixed(b) + " ms (reference: " + ratio(ra, rb) + ")"});
  }
  auto rss = [&](const std::string& key) {
    return std::pair{get(r, key + ".ours", &Series::rss_p50_mb),
                     get(r, key + ".ref", &Series::rss_p50_mb)};
  };
  {
    auto [a, b] = rss("alone.ADD");
    targets.push_back(
        {"macvlan peak RSS <= 0.5x reference", a / b, 0.5, fixed(a) + " vs " + fixed(b) + " MB"});
  }
  if (!info.leases.empty()) {
    auto [a, b] = rss("hl" + std::to_string(info.leases.front()) + ".ADD");
    targets.push_back({"host-local peak RSS <= 0.5x reference", a / b, 0.5,
                       fixed(a) + " vs " + fixed(b) + " MB"});
  }

  std::ostringstream o;
  o << "| target | measured | ratio | met |\n|---|---|--:|---|\n";
  for (const auto& t : targets) {
    const bool known = !std::isnan(t.measured);
    std::string verdict = "**missed**";
    if (!known) {
      verdict = "not measured";
    } else if (std::isnan(t.limit)) {
      verdict = "(no target)";
    } else if (t.measured <= t.limit) {
      verdict = "**met**";
    }
    o << "| " << t.what << " | " << t.detail << " | " << (known ? fixed(t.measured) + "x" : "-")
      << " | " << verdict << " |\n";
  }
  return o.str();
}

}  // namespace

std::string render_tables(const Results& results, const RunInfo& info) {
  std::ostringstream o;
  o << "### Latency (" << info.iterations << " iterations; " << info.rss_iterations
    << " for macvlan alone and VERSION)\n\n"
    << latency_table(results, info) << "\n### Peak RSS of one exec\n\n"
    << rss_table(results, info) << "\n### CPU time and blocking\n\n"
    << cpu_table(results, info) << "\n### Targets\n\n"
    << targets_table(results, info);
  return o.str();
}

std::string render_doc(const Results& results, const RunInfo& info) {
  std::ostringstream o;
  o << "# Benchmarks\n\n"
    << "Generated by `scripts/bench --write-doc` (bench/strait_bench.cpp) on " << info.date
    << ". The part above the marker line is rewritten by every run; absolute times on a "
       "shared machine are noise, the ratios of the interleaved runs are the result.\n\n"
    << "## Machine and binaries\n\n"
    << "- CPU: " << info.cpu << ", " << info.nproc << " online CPUs; kernel " << info.kernel << "\n"
    << "- Load average (1/5/15 min) at start: " << info.load_start << "; at end: " << info.load_end
    << "; run took " << fixed(info.wall_s, 0) << " s\n"
    << "- Ours: `" << info.ours_dir << "` (" << info.revision << ", " << info.build_type << ")\n"
    << "- Reference: `" << info.ref_dir << "`, Debian containernetworking-plugins "
    << info.ref_version << " (Go); both driven with cniVersion 1.0.0\n\n"
    << "## Method\n\n"
    << "- One client execs every plugin as a runtime does: exactly the CNI_* environment, the "
       "config on a stdin pipe, stdout and stderr from pipes, the ADD result as `prevResult` "
       "for CHECK and DEL. Wall time is CLOCK_MONOTONIC from just before `posix_spawn` to "
       "`wait4`'s return; peak RSS and CPU come from `wait4`. The spawning is done by a small "
       "static fork server (bench/spawn_server.cpp) because a child's `ru_maxrss` starts at "
       "its spawner's peak.\n"
    << "- Everything happens in network namespaces the bench creates: a host netns whose veth "
       "`eth1` is the macvlan master (its peer in a second netns), and a pool of pod netns "
       "reused across iterations (DEL between ADDs). The plugins run in the host netns with "
       "/sys remounted, like `ip netns exec`.\n"
    << "- Ours, the reference and the kernel floor alternate within each iteration, in a "
       "rotating order, so load changes on the machine hit all of them alike.\n"
    << "- The kernel floor is the same work done in-process with libcni's netlink verbs and "
       "nothing else: create the macvlan directly in the pod netns, add the address, set it "
       "up, add the default route; DEL deletes the link.\n"
    << "- *macvlan alone* runs the plugins with a static stub as `host-local` (it prints a "
       "fixed address), so the figures are the plugin's own; `wait4` reports the largest "
       "peak of a process and the children it waited for.\n"
    << "- host-local alone: each lease count has its own dataDir pre-filled with lease files "
       "in the upstream format (`<ip>` holding `<id>\\r\\n<ifname>`, `last_reserved_ip.0`); "
       "every iteration is an ADD and a DEL, so the count stays fixed.\n\n"
    << "## Results\n\n"
    << render_tables(results, info);
  return o.str();
}

void write_doc(const std::string& path, const std::string& generated) {
  std::string tail =
      "\n## Analysis\n\n(Hand-written: why the figures are what they are, and what to change.)\n";
  {
    std::ifstream in(path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string old = ss.str();
      const auto pos = old.find(kKeepMarker);
      if (pos != std::string::npos) tail = old.substr(pos + std::string(kKeepMarker).size());
    }
  }
  std::ofstream out(path, std::ios::trunc);
  out << generated << "\n" << kKeepMarker << tail;
  if (!out) throw std::runtime_error("failed to write " + path);
}

}  // namespace strait::bench
