#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace strait::bench {

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const auto hi = static_cast<size_t>(std::ceil(pos));
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

std::vector<double> Series::column(double Sample::*field) const {
  std::vector<double> v;
  v.reserve(samples_.size());
  for (const auto& s : samples_) v.push_back(s.*field);
  return v;
}

double Series::time_quantile(double q) const { return quantile(column(&Sample::ms), q); }

double Series::cpu_p50() const { return quantile(column(&Sample::cpu_ms), 0.5); }

double Series::rss_p50_mb() const {
  std::vector<double> v;
  for (const auto& s : samples_) v.push_back(static_cast<double>(s.rss_kb) / 1024.0);
  return quantile(v, 0.5);
}

double Series::rss_max_mb() const {
  std::vector<double> v;
  for (const auto& s : samples_) v.push_back(static_cast<double>(s.rss_kb) / 1024.0);
  return quantile(v, 1.0);
}

double Series::nvcsw_p50() const {
  std::vector<double> v;
  for (const auto& s : samples_) v.push_back(static_cast<double>(s.nvcsw));
  return quantile(v, 0.5);
}

}  // namespace strait::bench
