#include "plugins/bandwidth/bandwidth_config.h"

#include <cmath>
#include <string_view>

#include "libcni/kernel/qdisc.h"
#include "libcni/protocol/fields.h"

namespace bandwidth {

namespace {

// The keys of upstream's BandwidthEntry. Any of them at the top level makes the top level the
// source, as Go's decoder allocates the embedded *BandwidthEntry for any of its fields.
constexpr std::string_view kEntryKeys[] = {"ingressRate", "ingressBurst",    "egressRate",
                                           "egressBurst", "unshapedSubnets", "shapedSubnets"};

// Upstream: `burst/8 >= math.MaxUint32` is "burst cannot be more than 4GB".
constexpr uint64_t kMaxBurstBytes = 0xffffffffull;

Limit parse_limit(const cni::Fields& f, std::string_view dir) {
  const std::string rate_key = std::string(dir) + "Rate";
  const std::string burst_key = std::string(dir) + "Burst";
  Limit l;
  l.rate = f.uinteger(rate_key, UINT64_MAX).value_or(0);
  l.burst = f.uinteger(burst_key, UINT64_MAX).value_or(0);
  if (l.rate != 0 && l.burst == 0) {
    f.fail(burst_key, "is not set but \"" + f.key_path(rate_key) + "\" is (" +
                          std::to_string(l.rate) + "): if rate is set, burst must also be set");
  }
  if (l.rate == 0 && l.burst != 0) {
    f.fail(rate_key, "is not set but \"" + f.key_path(burst_key) + "\" is (" +
                         std::to_string(l.burst) + "): if burst is set, rate must also be set");
  }
  if (l.burst / 8 >= kMaxBurstBytes) {
    f.fail(burst_key, std::to_string(l.burst) +
                          " is too large: burst cannot be more than 4GB (burst/8 must be below " +
                          std::to_string(kMaxBurstBytes) + ")");
  }
  if (l.rate != 0 && l.rate < 8) {
    f.fail(rate_key, std::to_string(l.rate) +
                         " bits/s is below 8, the smallest rate a token bucket takes (1 byte/s)");
  }
  if (l.rate / 8 > cni::kMaxTbfRate) {
    f.fail(rate_key, std::to_string(l.rate) + " bits/s is above " +
                         std::to_string(cni::kMaxTbfRate * 8) +
                         ", the largest rate a token bucket takes (32 bits of bytes/s)");
  }
  return l;
}

// Upstream's subnet exceptions (v1.5, removed in v1.6.0 for HTB's problems, plugins #1097):
// shaping everything when asked to leave some traffic unshaped would be a silent surprise.
void refuse_subnets(const cni::Fields& f) {
  for (std::string_view key : {"unshapedSubnets", "shapedSubnets"}) {
    const nlohmann::json* list = f.array(key);
    if (list && !list->empty()) {
      f.fail(key, cni::quote_value(*list) +
                      ": subnet exceptions are not supported (upstream removed them in v1.6.0); "
                      "every packet of the attachment is shaped");
    }
  }
}

std::string device_id_of(const cni::NetConf& conf) {
  cni::Fields top(conf.raw, "");
  cni::Fields runtime(conf.runtime_config, "runtimeConfig");
  if (auto id = runtime.str("deviceID"); id && !id->empty()) return *id;
  return top.str_or("deviceID", "");
}

}  // namespace

BandwidthConfig parse_config(const cni::NetConf& conf) {
  BandwidthConfig c;
  cni::Fields top(conf.raw, "");
  bool static_entry = false;
  for (std::string_view key : kEntryKeys) static_entry = static_entry || conf.raw.contains(key);
  if (static_entry) {
    c.source = Source::kStatic;
    refuse_subnets(top);
    c.ingress = parse_limit(top, "ingress");
    c.egress = parse_limit(top, "egress");
  } else if (auto rt = cni::Fields(conf.runtime_config, "runtimeConfig").object("bandwidth")) {
    c.source = Source::kRuntimeConfig;
    refuse_subnets(*rt);
    c.ingress = parse_limit(*rt, "ingress");
    c.egress = parse_limit(*rt, "egress");
  }

  if (auto max_burst = top.uinteger("maxBurst", UINT64_MAX)) {
    if (*max_burst == 0)
      top.fail("maxBurst", "0 must be positive (bits; leave it out for the default)");
    if (*max_burst / 8 >= kMaxBurstBytes) {
      top.fail("maxBurst",
               std::to_string(*max_burst) + " is too large: burst cannot be more than 4GB");
    }
    c.max_burst = max_burst;
  }
  if (conf.raw.contains("latencyMs") && !conf.raw["latencyMs"].is_null()) {
    const nlohmann::json& v = conf.raw["latencyMs"];
    if (!v.is_number()) {
      top.fail("latencyMs", "must be a number of milliseconds, got " + cni::quote_value(v));
    }
    const double ms = v.get<double>();
    if (!(ms > 0) || ms > kMaxLatencyMs || !std::isfinite(ms)) {
      top.fail("latencyMs", cni::quote_value(v) + " is outside (0, " +
                                std::to_string(static_cast<int>(kMaxLatencyMs)) + "]");
    }
    c.latency_ms = ms;
  }
  c.use_vf_rate = top.boolean_or("useVfRate", false);
  c.device_id = device_id_of(conf);
  return c;
}

DelConfig parse_del_config(const cni::NetConf& conf) {
  DelConfig d;
  try {
    d.use_vf_rate = cni::Fields(conf.raw, "").boolean_or("useVfRate", false);
    d.device_id = device_id_of(conf);
  } catch (const std::exception&) {
    // A malformed key cannot stop a DEL: the VF's rate is then left alone.
    d = DelConfig{};
  }
  return d;
}

}  // namespace bandwidth
