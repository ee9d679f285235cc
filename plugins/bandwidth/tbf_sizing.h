#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "libcni/kernel/qdisc.h"
#include "plugins/bandwidth/bandwidth_config.h"

// How one direction's rate and burst become a token bucket's rate, bucket and queue (tbf), and
// a VF's max_tx_rate. The figures behind the constants are in plugins/bandwidth/README.md
// ("Latency under load") and docs/benchmarks.md.
namespace bandwidth {

// Ethernet header on top of the MTU: what one full frame takes from the bucket and the queue.
inline constexpr uint32_t kEthHeader = 14;
// The queue holds latencyMs at the rate plus this many full frames: at low rates latencyMs is
// only a few frames, and with fewer than about 8 TCP's own bursts (two-segment GSO packets,
// BBR's minimum of 4 in flight) overflow it and goodput falls (measured at 10 Mbit/s: 0.77 of
// the rate with BBR at 4 frames). The small-packet band (small_band.h) keeps sparse traffic
// out of this queue, so its length costs the bulk flows' own RTT only.
inline constexpr uint32_t kQueueFrames = 6;
// A bucket smaller than one frame would drop every full-size packet; two leave room for the
// kernel keeping the bucket in microseconds.
inline constexpr uint32_t kMinBucketFrames = 2;
// The default maxBurst: this long at the rate (at least the queue's size). The bucket is spent
// at no more than kPeakRatio times the rate, so it adds no line-rate burst: it lets a sender
// that stalled (a loaded node: a scheduler tick is 4 ms at HZ=250, and several pass under load)
// catch up instead of losing that time for good. A runtime's 2^32-1 bits would be seconds at
// line rate (kubernetes #90838).
inline constexpr double kDefaultMaxBurstMs = 20.0;
// A full bucket empties at this multiple of the rate, not at line rate, through a second
// bucket (tbf's peakrate and mtu). A line-rate burst makes a rate-probing sender (BBR) believe
// the path is faster than the rate and overrun the short queue: with it, BBR's goodput at 100
// Mbit/s went from 0.89 to 0.95 of the rate.
inline constexpr double kPeakRatio = 1.2;
// The peak bucket: this long at the peak rate, at least 2 frames, and at most one GSO packet
// (64 KiB) and a frame, and half the queue (a packet that fits the buckets but not the queue
// would be dropped whole). tbf cuts every packet larger than a bucket into frames in software;
// with a 2-frame peak bucket at 500 Mbit/s that cost the sender's CPU a quarter of its goodput.
inline constexpr double kPeakBucketMs = 2.0;
inline constexpr uint32_t kPeakBucketMinFrames = 2;
inline constexpr uint32_t kGsoMaxBytes = 65536;

struct Sizing {
  double latency_ms = kDefaultLatencyMs;
  std::optional<uint64_t> max_burst;  // bits; nullopt: the default cap
  int mtu = 1500;                     // of the device the tbf sits on
};

struct SizedTbf {
  cni::TbfParams params;
  // What was changed from the configured burst and why ("" when nothing was): logged.
  std::string note;
};

// rate: bits/s -> bytes/s (/8, as upstream). The queue (limit) holds latency_ms at the rate
// plus kQueueFrames frames; unlike upstream (25 ms + the burst), the bucket is not
// added: under sustained load the bucket is empty and every queued byte waits limit/rate.
// The bucket (burst) is the configured one capped by maxBurst (default_max_burst_bytes;
// runtimes send 2^32-1 bits, kubernetes #90838), and raised to kMinBucketFrames. The peak
// rate is kPeakRatio times the rate (none when that does not fit tbf's 32 bits).
SizedTbf size_tbf(const Limit& limit, const Sizing& sizing);

// The default maxBurst for `rate_bits` on a device of `mtu`, in bytes (README: why).
uint64_t default_max_burst_bytes(uint64_t rate_bits, const Sizing& sizing);

// A VF's max_tx_rate is whole Mbit/s: the rate rounded to the nearest, at least 1 (0 would
// mean unlimited). `note` says when that is not the configured rate.
uint32_t vf_rate_mbps(uint64_t rate_bits, std::string* note);

}  // namespace bandwidth
