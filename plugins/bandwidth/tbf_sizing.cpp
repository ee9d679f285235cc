#include "plugins/bandwidth/tbf_sizing.h"

#include <algorithm>
#include <cmath>

namespace bandwidth {

namespace {

uint32_t frame_bytes(int mtu) { return static_cast<uint32_t>(std::max(mtu, 68)) + kEthHeader; }

uint32_t clamp32(double v) {
  if (!(v > 0)) return 0;
  return v >= 4294967295.0 ? 0xffffffffu : static_cast<uint32_t>(v);
}

uint32_t queue_bytes(uint64_t rate_bytes, const Sizing& sizing) {
  const uint32_t by_time = clamp32(static_cast<double>(rate_bytes) * sizing.latency_ms / 1000.0);
  const uint64_t total = uint64_t{by_time} + uint64_t{kQueueFrames} * frame_bytes(sizing.mtu);
  return static_cast<uint32_t>(std::min<uint64_t>(total, 0xffffffffu));
}

}  // namespace

uint64_t default_max_burst_bytes(uint64_t rate_bits, const Sizing& sizing) {
  const uint64_t rate = rate_bits / 8;
  return std::max<uint64_t>(clamp32(static_cast<double>(rate) * kDefaultMaxBurstMs / 1000.0),
                            queue_bytes(rate, sizing));
}

SizedTbf size_tbf(const Limit& limit, const Sizing& sizing) {
  SizedTbf out;
  const uint64_t rate = limit.rate / 8;
  out.params.rate = rate;
  out.params.limit = queue_bytes(rate, sizing);

  const uint64_t asked = limit.burst / 8;  // < 2^32: the config checked it
  const uint64_t cap =
      sizing.max_burst ? *sizing.max_burst / 8 : default_max_burst_bytes(limit.rate, sizing);
  uint64_t burst = std::min(asked, cap);
  if (burst < asked) {
    out.note = "burst " + std::to_string(limit.burst) + " bits capped to " +
               std::to_string(burst * 8) + " bits (" +
               (sizing.max_burst ? std::string("maxBurst")
                                 : "the default maxBurst, " +
                                       std::to_string(static_cast<int>(kDefaultMaxBurstMs)) +
                                       " ms at the rate") +
               ")";
  }
  const uint64_t floor = uint64_t{kMinBucketFrames} * frame_bytes(sizing.mtu);
  if (burst < floor) {
    out.note = "burst " + std::to_string(limit.burst) + " bits raised to " +
               std::to_string(floor * 8) + " bits (" + std::to_string(kMinBucketFrames) +
               " frames of MTU " + std::to_string(sizing.mtu) +
               "; a smaller bucket drops every full-size packet)";
    burst = floor;
  }
  out.params.burst = static_cast<uint32_t>(burst);
  const auto peak = static_cast<uint64_t>(static_cast<double>(rate) * kPeakRatio);
  if (peak > rate && peak <= cni::kMaxTbfRate) {
    out.params.peakrate = peak;
    const uint32_t frame = frame_bytes(sizing.mtu);
    const uint32_t by_time = clamp32(static_cast<double>(peak) * kPeakBucketMs / 1000.0);
    // Never more than half the queue: tbf lets through uncut any packet that fits both buckets,
    // and one larger than the queue's limit is dropped whole (at 100 Mbit/s a 2 ms peak bucket
    // over a 2 ms queue dropped every large GSO packet: goodput 0.03-0.5).
    const uint32_t most = std::min(kGsoMaxBytes + frame, out.params.limit / 2);
    out.params.mtu = std::clamp(by_time, kPeakBucketMinFrames * frame, most);
  }
  return out;
}

uint32_t vf_rate_mbps(uint64_t rate_bits, std::string* note) {
  const double mbps = std::round(static_cast<double>(rate_bits) / 1e6);
  const uint32_t out = mbps < 1 ? 1u : clamp32(mbps);
  if (static_cast<uint64_t>(out) * 1000000 != rate_bits && note) {
    *note = "rate " + std::to_string(rate_bits) + " bits/s set as " + std::to_string(out) +
            " Mbit/s (a VF's max_tx_rate is whole Mbit/s)";
  }
  return out;
}

}  // namespace bandwidth
