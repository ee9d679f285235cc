#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ipam/address_request.h"
#include "ipam/range.h"
#include "libcni/core/ip.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"

namespace ipam {

inline constexpr char kDefaultDataDir[] = "/var/lib/cni/networks";

// The `ipam` block of host-local, keys and defaults as in upstream (allocator/config.go).
struct HostLocalConfig {
  std::string network;  // the config's name: the lease directory under data_dir
  // Range sets in upstream's order: runtimeConfig.ipRanges, then the legacy top-level
  // range, then ipam.ranges. The index is the N of last_reserved_ip.N.
  std::vector<RangeSet> range_sets;
  std::vector<cni::Route> routes;
  std::string data_dir = kDefaultDataDir;
  std::string resolv_conf;                // empty: no DNS in the result
  std::vector<AddressRequest> requested;  // deduplicated
};

// Reads and validates the config. Faults throw cni::Error{kErrInvalidConfig} naming the key
// path ("ipam.ranges[0][1].rangeEnd"); a malformed CNI_ARGS IP is kErrInvalidEnv. `env.args`
// supplies the CNI_ARGS IP (several may be given comma-separated).
HostLocalConfig parse_host_local_config(const cni::NetConf& conf, const cni::Env& env);

}  // namespace ipam
