#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "overlay/config.h"
#include "overlay/tunnel.h"
#include "plugins/ipip/ipip_config.h"

// The ipip side of overlay::Tunnel: the ipip module's fallback device tunl0 (Calico's), which
// takes every IPIP packet no other tunnel matches and sends each packet to its route's next
// hop, so one device serves every remote node: `<block> via <remote underlay> dev tunl0
// onlink`. No per-node objects (no neighbours: IPIP has no link layer). In crossSubnet mode a
// remote node on this node's underlay subnet is routed directly, `<block> via <remote
// underlay> dev <underlay>`, unencapsulated.
//
// Tunnel address (needs_tunnel_addresses): yes, one from this node's IPv4 block on tunl0, as
// Calico's ipv4IPIPTunnelAddr. Pods' traffic needs none (the outer destination is the
// route's next hop, the outer source the underlay's), but traffic the node itself sends to
// a remote pod takes tunl0's address as its source: without one it would take the underlay
// address, and the remote node, whose route to that address is its underlay and not tunl0,
// would drop the decapsulated packet under rp_filter (and the reply would bypass the tunnel).
namespace ipip {

class IpipTunnel : public overlay::Tunnel {
 public:
  IpipTunnel(const IpipConfig& cfg, const overlay::Underlay& underlay);

  const std::string& device() const override { return device_; }
  std::string kind() const override { return "ipip"; }
  bool needs_tunnel_addresses() const override { return true; }
  // Code 50 naming CONFIG_NET_IPIP when this kernel has no tunl0 and refuses to make an ipip
  // link (a probe under a temporary name, deleted at once); code 7 for an IPv6 underlay.
  void require_support(cni::NlSocket& sock) override;

  cni::LinkInfo ensure_device(cni::NlSocket& sock, overlay::Writes& writes, bool* created,
                              cni::Logger& log) override;
  void check_device(cni::NlSocket& sock) override;

  std::map<std::string, std::string> node_attributes() const override { return {}; }
  bool reachable(const overlay::OverlayNode& remote, std::string* why) const override;
  std::optional<cni::RouteSpec> route_to(const overlay::OverlayNode& remote, const cni::IpNet& dst,
                                         int device_index) const override;
  void add_peers(cni::NlSocket&, int, const std::vector<overlay::OverlayNode>&, overlay::Writes&,
                 cni::Logger&) override {}
  void remove_stale_peers(cni::NlSocket&, int, overlay::Writes&, cni::Logger&) override {}

  // Whether `remote` is on this node's underlay subnet (crossSubnet routes it directly).
  bool same_subnet(const cni::IpAddress& remote) const;

 private:
  const IpipConfig& cfg_;
  const overlay::Underlay& underlay_;
  std::string device_;
};

}  // namespace ipip
