#pragma once

#include <cstdint>
#include <string>

#include "libcni/core/mac.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "overlay/config.h"

// The vxlan plugin's keys (plugins/vxlan/README.md): its own (vni, port, device) and the ones
// every overlay shares (overlay/config.h: underlayInterface, localAddress, mtu, ipam).
namespace vxlan {

inline constexpr char kDefaultDevice[] = "strait.vxlan";
inline constexpr uint32_t kMaxVni = 16777215;  // 24 bits (RFC 7348)
// VXLAN over IPv4 adds outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) = 50 bytes;
// over IPv6, 70 (Calico's and flannel's figures).
inline constexpr overlay::Overhead kOverhead{50, 70};

struct VxlanConfig {
  overlay::OverlayConfig overlay;
  uint32_t vni = 1;
  uint16_t port = 4789;
  std::string device = kDefaultDevice;
};

// Everything that needs no kernel; cni::Error{kErrInvalidConfig} naming key and value.
VxlanConfig parse_config(const cni::NetConf& conf, const cni::EnvMap& environ);

// The VTEP MAC of `node`'s `device`: derived from both names (cni::stable_hash64), unicast and
// locally administered, so it is the same after every restart and on every node that
// computes it, and needs storing nowhere but the node record.
cni::MacAddress vtep_mac(const std::string& node, const std::string& device);

}  // namespace vxlan
