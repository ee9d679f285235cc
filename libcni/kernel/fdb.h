#pragma once

#include <optional>
#include <string>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/core/mac.h"
#include "libcni/kernel/netlink.h"

// Forwarding database entries of a VXLAN device (AF_BRIDGE neighbours with NTF_SELF): which
// underlay address a destination MAC is encapsulated to, as `bridge fdb replace <mac> dev
// <vxlan> dst <ip> self permanent` writes them. With learning off these are the only way
// the device knows its remote VTEPs.
namespace cni {

struct FdbSpec {
  int ifindex = 0;
  MacAddress mac{};
  IpAddress dst{};  // the remote VTEP's underlay address
  bool operator==(const FdbSpec&) const = default;
};

// Adds the entry or replaces the destination of the MAC's entry (NLM_F_REPLACE). Throws
// NetlinkError `failed to add fdb entry 02:..:01 dst 192.0.2.2 dev if5: ...`.
void replace_fdb(NlSocket& sock, const FdbSpec& entry);
// Deletes the MAC's entry towards `dst`; ENOENT when there is none.
void delete_fdb(NlSocket& sock, const FdbSpec& entry);
bool delete_fdb_if_exists(NlSocket& sock, const FdbSpec& entry);

struct FdbInfo {
  int ifindex = 0;
  MacAddress mac{};
  std::optional<IpAddress> dst{};  // unset for a device's own entries
  uint16_t state = 0;              // NUD_*
  uint8_t flags = 0;               // NTF_*
};
// The device's own (NTF_SELF) entries.
std::vector<FdbInfo> list_fdb(NlSocket& sock, int ifindex);

}  // namespace cni
