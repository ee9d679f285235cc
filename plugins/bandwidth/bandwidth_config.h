#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "libcni/protocol/netconf.h"

// The bandwidth plugin's keys: upstream's (containernetworking/plugins plugins/meta/bandwidth)
// and ours (maxBurst, latencyMs, useVfRate). See plugins/bandwidth/README.md.
namespace bandwidth {

// One direction's limit: rate in bits/s, burst in bits (upstream's units). 0/0 is no limit.
struct Limit {
  uint64_t rate = 0;
  uint64_t burst = 0;
  bool shaped() const { return rate != 0; }
  bool operator==(const Limit&) const = default;
};

// Where the limits came from: upstream reads the top-level keys when any of them is present,
// and runtimeConfig.bandwidth (capability "bandwidth") only otherwise.
enum class Source { kNone, kStatic, kRuntimeConfig };

// The queue's length in time at the configured rate (latencyMs): how long a packet waits at
// most in a full queue. See plugins/bandwidth/README.md for how the default was measured.
inline constexpr double kDefaultLatencyMs = 4.0;
inline constexpr double kMaxLatencyMs = 1000.0;

struct BandwidthConfig {
  Limit ingress;  // to the pod
  Limit egress;   // from the pod
  Source source = Source::kNone;
  // maxBurst (bits): no bucket is larger. nullopt: the default (see tbf_sizing.h).
  std::optional<uint64_t> max_burst;
  double latency_ms = kDefaultLatencyMs;
  // useVfRate: an SR-IOV VF's egress is limited by the VF's max_tx_rate through its PF.
  bool use_vf_rate = false;
  // The VF's PCI address: runtimeConfig.deviceID, else deviceID (what multus and the SR-IOV
  // device plugin inject); "" when neither is given.
  std::string device_id;

  bool is_zero() const {
    return !ingress.shaped() && !egress.shaped() && ingress.burst == 0 && egress.burst == 0;
  }
};

// Parses and validates everything ADD, CHECK and STATUS need, with upstream's rules: a rate
// without its burst (or a burst without its rate) and a burst/8 that does not fit 32 bits
// are errors. Every fault is cni::Error{kErrInvalidConfig} naming the key (with its path,
// "runtimeConfig.bandwidth.ingressRate") and the value.
BandwidthConfig parse_config(const cni::NetConf& conf);

// What DEL needs, and never fails on: useVfRate and the device ID (a VF's rate is reset).
// DEL derives every device name from the attachment, so it reads no limits.
struct DelConfig {
  bool use_vf_rate = false;
  std::string device_id;
};
DelConfig parse_del_config(const cni::NetConf& conf);

}  // namespace bandwidth
