#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/stats.h"

// The bench's tables (markdown, printed as they are) and docs/benchmarks.md.
namespace strait::bench {

// Series keys: "<scenario>.<operation>.<who>", who = ours | ref | floor, e.g.
// "chain.ADD.ours", "chain.DEL.floor", "alone.ADD.ref", "hl1000.ADD.ours",
// "version.macvlan.ref", "version.stub.stub".
using Results = std::map<std::string, Series>;

struct RunInfo {
  std::string date;  // UTC, ISO 8601
  std::string cpu;   // /proc/cpuinfo "model name"
  std::string kernel;
  long nproc = 0;
  std::string load_start;  // /proc/loadavg at start and at the end
  std::string load_end;
  std::string ours_dir;
  std::string ref_dir;
  std::string ref_version;  // the Debian package's version
  std::string revision;     // ours: git describe, given by scripts/bench
  std::string build_type;   // ours: CMAKE_BUILD_TYPE
  int iterations = 0;
  int rss_iterations = 0;
  std::vector<int> leases;
  double wall_s = 0;
};

// Every table: latency, peak RSS, CPU time, and the targets with met / missed.
std::string render_tables(const Results& results, const RunInfo& info);
// The generated part of docs/benchmarks.md: what was measured, on what, and the tables.
std::string render_doc(const Results& results, const RunInfo& info);
// Writes `generated` to `path`, keeping whatever follows kKeepMarker in the existing file
// (the hand-written analysis); a new file gets the marker and an empty analysis section.
void write_doc(const std::string& path, const std::string& generated);
inline constexpr const char* kKeepMarker =
    "<!-- Everything below this line is hand-written and kept by scripts/bench --write-doc. -->";

}  // namespace strait::bench
