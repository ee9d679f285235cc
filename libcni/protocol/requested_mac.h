#pragma once

#include <optional>
#include <string>

#include "libcni/core/mac.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/fields.h"

// The MAC address a pod asked for, from the three places upstream plugins read it (macvlan's
// and sriov-cni's loadConf): runtimeConfig.mac (the `mac` capability, multus) wins over
// CNI_ARGS MAC= (the deprecated way), which wins over the config's `mac`.
namespace cni {

// Where the MAC address came from (for messages and tests).
enum class MacSource { kNone, kConfig, kCniArgs, kRuntimeConfig };

struct RequestedMac {
  std::optional<MacAddress> mac{};  // nullopt: none asked for
  MacSource source = MacSource::kNone;
};

// "aa:bb:cc:dd:ee:ff" as a unicast, non-zero Ethernet address, or nullopt with `why` set
// ("is a multicast address ...").
std::optional<MacAddress> parse_unicast_mac(const std::string& text, std::string* why);

// Every source given is validated, whoever wins: a bad `mac` or runtimeConfig.mac is
// Error{kErrInvalidConfig} naming the key, a bad CNI_ARGS MAC Error{kErrInvalidEnv} naming
// CNI_ARGS. Empty strings mean "not given", as upstream's omitempty. `top` is the config's
// top level.
RequestedMac requested_mac(const Fields& top, const CniArgs& cni_args);

}  // namespace cni
