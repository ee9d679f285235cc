#pragma once

#include <map>
#include <optional>
#include <string>

#include "ipam/global/records.h"
#include "libcni/core/ip.h"

// This node as the overlays publish it in global-ipam's node records (ipam/global/nodes.h):
// the record's `address` is the underlay address, and each tunnel device adds attributes
// under its own name, so a node running vxlan and ipip has both and neither clobbers the
// other:
//
//   <device>.tunnelIPv4, <device>.tunnelIPv6   the addresses on the tunnel device that remote
//                                              nodes use as the onlink next hop
//   plus what the tunnel adds (vxlan: <device>.vtepMAC, <device>.vni)
namespace overlay {

struct OverlayNode {
  std::string name;
  std::optional<cni::IpAddress> underlay;
  std::optional<cni::IpAddress> tunnel_v4;
  std::optional<cni::IpAddress> tunnel_v6;
  std::map<std::string, std::string> attributes;  // the tunnel's own, without the prefix

  std::optional<cni::IpAddress> tunnel(int family) const;
  bool operator==(const OverlayNode&) const = default;
};

// `<device>.<key>`.
std::string attribute_key(const std::string& device, const std::string& key);

// The record fields this node writes for `device` (attributes with the device's prefix).
ipam::records::NodeRecord to_record(const OverlayNode& node, const std::string& device);
// What a record says for `device`; unparsable tunnel addresses read as absent.
OverlayNode from_record(const ipam::records::NodeRecord& record, const std::string& device);

}  // namespace overlay
