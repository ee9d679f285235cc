#pragma once

#include <optional>
#include <string>

#include "ipam/global/config.h"
#include "libcni/core/ip.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"

// The keys every overlay plugin reads the same way (vxlan now, ipip next): the underlay, the
// tunnel MTU, and the IPAM, which must be global-ipam: only its block table tells a node which
// remote node holds which addresses, and only its blocks are routed (no gateway, no subnet per
// node). plugins/vxlan/README.md documents them.
namespace overlay {

struct OverlayConfig {
  std::string network;  // the config's name
  // Empty: the device of the host's default route (IPv4 first).
  std::string underlay_interface;
  // Unset: the first IPv4 address of the underlay device, else its first global IPv6 one.
  std::optional<cni::IpAddress> local_address;
  int mtu = 0;  // 0: the underlay's MTU less the tunnel's overhead
  // The `ipam` block as global-ipam reads it: pools, store, node name, node lock directory.
  ipam::GlobalConfig ipam;
};

// Reads the shared keys and the ipam block. Faults are cni::Error{kErrInvalidConfig} naming the
// key and the value: an `ipam.type` other than global-ipam, an `underlayInterface` that is no
// interface name, an `mtu` outside 68..65535, a `localAddress` that is no address, and every
// fault global-ipam's own parser finds.
OverlayConfig parse_overlay_config(const cni::NetConf& conf, const cni::EnvMap& environ,
                                   const std::string& plugin);

// The underlay as the kernel has it.
struct Underlay {
  cni::LinkInfo link;
  cni::IpAddress local;
  int local_prefix = 0;  // of `local` on the underlay: its subnet (ipip's crossSubnet)
  int tunnel_mtu = 0;    // `mtu`, or the underlay's MTU less the overhead
};

// The encapsulation overhead of a tunnel over an IPv4 and over an IPv6 underlay.
struct Overhead {
  int v4 = 0;
  int v6 = 0;
};

// Looks the underlay up in the host netns (`sock`). Code 7 naming the key when the interface
// does not exist, the host has no default route to take it from, `localAddress` is not an
// address of it, or `mtu` is more than the underlay carries.
Underlay resolve_underlay(cni::NlSocket& sock, const OverlayConfig& cfg, const Overhead& overhead);

}  // namespace overlay
