#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "libcni/core/ip.h"
#include "libcni/core/mac.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

// VXLAN devices (IFLA_INFO_KIND "vxlan"): creation through create_link with the kind's
// IFLA_VXLAN_* attributes, and the parameters of an existing one read back for CHECK and for
// repairing a device changed by hand.
namespace cni {

// IANA's VXLAN port (RFC 7348). The kernel's own default is 8472, Linux's pre-standard one.
inline constexpr uint16_t kVxlanIanaPort = 4789;

struct VxlanSpec {
  std::string name{};
  uint32_t vni = 1;                  // IFLA_VXLAN_ID, 1..2^24-1
  uint16_t port = kVxlanIanaPort;    // IFLA_VXLAN_PORT: the UDP destination port
  std::optional<IpAddress> local{};  // IFLA_VXLAN_LOCAL / LOCAL6: the source of encapsulation
  int underlay_index = 0;            // IFLA_VXLAN_LINK: the device the packets leave by
  bool learning = false;             // IFLA_VXLAN_LEARNING: off, the FDB is programmed
  int mtu = 0;                       // 0: the kernel's (the underlay's MTU - 50 or - 70)
  std::optional<MacAddress> mac{};
  bool up = false;
};
// Throws NetlinkError `failed to create vxlan link "strait.vxlan": File exists`.
void create_vxlan(NlSocket& sock, const VxlanSpec& spec);

// What the kernel reports of a vxlan device.
struct VxlanParams {
  uint32_t vni = 0;
  uint16_t port = 0;
  std::optional<IpAddress> local{};
  int underlay_index = 0;
  bool learning = true;
  bool operator==(const VxlanParams&) const = default;
};
// nullopt when the device is missing or not a vxlan.
std::optional<VxlanParams> find_vxlan_params(NlSocket& sock, const LinkRef& link);

}  // namespace cni
