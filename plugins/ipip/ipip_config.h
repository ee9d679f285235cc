#pragma once

#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "overlay/config.h"

// The ipip plugin's keys (plugins/ipip/README.md): its own (ipipMode) and the ones every
// overlay shares (overlay/config.h: underlayInterface, localAddress, mtu, ipam).
namespace ipip {

// IPv4 in IPv4 adds one outer IPv4 header: 20 bytes (1480 on a 1500 underlay, Calico's IPIP
// MTU). The tunnel carries IPv4 only, so an IPv6 underlay has no figure of its own: it is
// refused (IpipTunnel::require_support), the 20 keeps resolve_underlay's arithmetic sane.
inline constexpr overlay::Overhead kOverhead{20, 20};

// Calico's ipipMode: every remote block through tunl0, or only those of nodes on another
// subnet of the underlay (same-subnet nodes are routed directly via their underlay address).
enum class Mode { kAlways, kCrossSubnet };

struct IpipConfig {
  overlay::OverlayConfig overlay;
  Mode mode = Mode::kAlways;
};

// Everything that needs no kernel; cni::Error{kErrInvalidConfig} naming key and value.
IpipConfig parse_config(const cni::NetConf& conf, const cni::EnvMap& environ);

}  // namespace ipip
