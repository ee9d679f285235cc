#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libcni/core/mac.h"
#include "libcni/kernel/fdb.h"
#include "libcni/kernel/neigh.h"
#include "libcni/kernel/vxlan_link.h"
#include "overlay/config.h"
#include "overlay/tunnel.h"
#include "plugins/vxlan/vxlan_config.h"

// The vxlan side of overlay::Tunnel: one vxlan device per node (nolearning, the VTEP MAC
// derived from the node name), and per remote node a permanent neighbour entry (its tunnel
// address -> its VTEP MAC) and an FDB entry (its VTEP MAC -> its underlay address), flannel's
// three objects per peer with the route last.
//
// Which neighbour and FDB entries are ours: the device is ours (we made it, with learning off,
// so the kernel adds no FDB entries to it), so its permanent neighbour entries and its
// permanent unicast FDB entries with a destination are what this agent manages; the kernel's
// own non-permanent neighbour entries and any all-zero or multicast FDB entry an operator adds
// (a default destination for flooding) are left alone.
namespace vxlan {

class VxlanTunnel : public overlay::Tunnel {
 public:
  VxlanTunnel(const VxlanConfig& cfg, const overlay::Underlay& underlay);

  const std::string& device() const override { return cfg_.device; }
  std::string kind() const override { return "vxlan"; }
  bool needs_tunnel_addresses() const override { return true; }

  cni::LinkInfo ensure_device(cni::NlSocket& sock, overlay::Writes& writes, bool* created,
                              cni::Logger& log) override;
  void check_device(cni::NlSocket& sock) override;

  std::map<std::string, std::string> node_attributes() const override;
  bool reachable(const overlay::OverlayNode& remote, std::string* why) const override;
  std::optional<cni::RouteSpec> route_to(const overlay::OverlayNode& remote, const cni::IpNet& dst,
                                         int device_index) const override;
  void add_peers(cni::NlSocket& sock, int device_index,
                 const std::vector<overlay::OverlayNode>& peers, overlay::Writes& writes,
                 cni::Logger& log) override;
  void remove_stale_peers(cni::NlSocket& sock, int device_index, overlay::Writes& writes,
                          cni::Logger& log) override;

  cni::VxlanParams wanted_params() const;
  const cni::MacAddress& mac() const { return mac_; }

 private:
  // What differs between the device and the config ("" when nothing): parameters the kernel
  // cannot change on a live vxlan device (VNI, port, local address, underlay, learning, MAC).
  std::string fixed_difference(const cni::LinkInfo& link, const cni::VxlanParams& have) const;

  const VxlanConfig& cfg_;
  const overlay::Underlay& underlay_;
  cni::MacAddress mac_;
  std::vector<cni::NeighSpec> stale_neighbours_;
  std::vector<cni::FdbSpec> stale_fdb_;
};

}  // namespace vxlan
