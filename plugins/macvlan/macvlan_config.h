#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "libcni/core/mac.h"
#include "libcni/kernel/link.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/requested_mac.h"

// The macvlan plugin's keys, as in containernetworking/plugins plugins/main/macvlan.
namespace macvlan {

// Where the MAC address of the new interface came from (for messages and tests).
using MacSource = cni::MacSource;

struct MacvlanConfig {
  // Empty: the interface of the default route, looked up at ADD time in the host netns
  // (or in the pod netns with link_in_container).
  std::string master;
  cni::MacvlanMode mode = cni::MacvlanMode::kBridge;
  // 0: the master's MTU (the kernel's default). The upper bound (the master's MTU) needs
  // the kernel and is checked by cmd_add/cmd_check.
  int mtu = 0;
  // The winner of runtimeConfig.mac > CNI_ARGS MAC= > `mac`; nullopt: kernel-chosen.
  std::optional<cni::MacAddress> mac;
  MacSource mac_source = MacSource::kNone;
  bool link_in_container = false;
  // IFLA_MACVLAN_BC_QUEUE_LEN; nullopt (also for 0, as upstream's omitempty): kernel default.
  std::optional<uint32_t> bcqueuelen;
  // `ipam: {}`: L2 only, no IPAM delegate. Otherwise ipam.type names the delegate.
  bool l2_only = false;
  std::string ipam_type;
};

// Parses and validates everything that needs no kernel. Config faults throw
// cni::Error{kErrInvalidConfig} naming the key and value; a malformed CNI_ARGS MAC is
// cni::Error{kErrInvalidEnv} naming CNI_ARGS.
MacvlanConfig parse_config(const cni::NetConf& conf, const cni::CniArgs& cni_args);

// The lenient subset DEL, STATUS and GC need: only the IPAM block. A missing `ipam` reads
// as L2 only here, so DEL of an attachment whose config is odd still cleans up.
struct IpamChoice {
  bool l2_only = false;
  std::string type;
};
IpamChoice parse_ipam_choice(const cni::NetConf& conf);

}  // namespace macvlan
