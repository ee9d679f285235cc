#include "overlay/node_record.h"

#include <sys/socket.h>

namespace overlay {

namespace {
constexpr char kTunnelV4[] = "tunnelIPv4";
constexpr char kTunnelV6[] = "tunnelIPv6";
}  // namespace

std::optional<cni::IpAddress> OverlayNode::tunnel(int family) const {
  return family == AF_INET ? tunnel_v4 : tunnel_v6;
}

std::string attribute_key(const std::string& device, const std::string& key) {
  return device + "." + key;
}

ipam::records::NodeRecord to_record(const OverlayNode& node, const std::string& device) {
  ipam::records::NodeRecord r;
  r.name = node.name;
  r.address = node.underlay;
  r.attributes[attribute_key(device, kTunnelV4)] = node.tunnel_v4 ? node.tunnel_v4->str() : "";
  r.attributes[attribute_key(device, kTunnelV6)] = node.tunnel_v6 ? node.tunnel_v6->str() : "";
  for (const auto& [k, v] : node.attributes) r.attributes[attribute_key(device, k)] = v;
  return r;
}

OverlayNode from_record(const ipam::records::NodeRecord& record, const std::string& device) {
  OverlayNode n;
  n.name = record.name;
  n.underlay = record.address;
  const std::string prefix = device + ".";
  for (const auto& [k, v] : record.attributes) {
    if (k.rfind(prefix, 0) != 0 || v.empty()) continue;
    const std::string key = k.substr(prefix.size());
    if (key == kTunnelV4) {
      n.tunnel_v4 = cni::IpAddress::try_parse(v);
      if (n.tunnel_v4 && !n.tunnel_v4->is_v4()) n.tunnel_v4.reset();
    } else if (key == kTunnelV6) {
      n.tunnel_v6 = cni::IpAddress::try_parse(v);
      if (n.tunnel_v6 && !n.tunnel_v6->is_v6()) n.tunnel_v6.reset();
    } else {
      n.attributes[key] = v;
    }
  }
  return n;
}

}  // namespace overlay
