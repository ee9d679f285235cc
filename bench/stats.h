#pragma once

#include <cstdint>
#include <string>
#include <vector>

// Samples of one measured operation, and the order statistics the report prints.
namespace strait::bench {

struct Sample {
  double ms = 0;        // wall time
  int64_t rss_kb = -1;  // peak RSS (wait4); -1 for in-process operations
  double cpu_ms = -1;   // user + system (wait4, children included); -1 in-process
  int64_t nvcsw = -1;   // voluntary context switches; -1 in-process
};

// The q-quantile (0..1) of `values`: linear interpolation between closest ranks, so the
// median of an even count is the mean of the middle two. NaN when empty.
double quantile(std::vector<double> values, double q);

class Series {
 public:
  void add(const Sample& s) { samples_.push_back(s); }
  bool empty() const { return samples_.empty(); }
  size_t size() const { return samples_.size(); }

  double p50() const { return time_quantile(0.5); }
  double p99() const { return time_quantile(0.99); }
  double time_quantile(double q) const;
  double rss_p50_mb() const;
  double rss_max_mb() const;
  double cpu_p50() const;
  double nvcsw_p50() const;

 private:
  std::vector<double> column(double Sample::*field) const;
  std::vector<Sample> samples_;
};

}  // namespace strait::bench
