#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ipam/global/records.h"
#include "ipam/global/store.h"
#include "libcni/core/ip.h"
#include "libcni/core/log.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "overlay/config.h"
#include "overlay/node_record.h"
#include "overlay/tunnel.h"

// This node's share of an overlay, made by the first ADD (or the agent) and checked by every
// later one: forwarding, the tunnel device, its tunnel addresses and this node's record.
//
// Tunnel addresses (when the tunnel needs them, as vxlan does): one address per family of the
// pools that select this node, allocated through global-ipam's allocator under the handle
// "<kind>-tunnel-addr/<node>/<device>" (Calico's "vxlan-tunnel-addr-<node>"), so it comes from
// this node's own block, keeps that block from being released, and is found again (not
// allocated twice) by every later ADD. It sits on the device as /32 (/128): remote nodes route
// this node's blocks `via` it `onlink`, and traffic the node itself sends to remote pods takes
// it as its source, so replies come back through the tunnel.
namespace overlay {

// The handle of a node's tunnel addresses. Its network part is "<kind>-tunnel-addr", which no
// runtime network's GC collects (GC releases only the handles of its own network).
ipam::records::Handle tunnel_handle(const std::string& kind, const std::string& node,
                                    const std::string& device);

// What ensure() found or made.
struct NodeState {
  cni::LinkInfo device;
  OverlayNode self;
  // What this call made, for undo(): a failed first ADD leaves nothing behind.
  bool created_device = false;
  bool allocated_tunnel = false;
  bool created_record = false;
  std::vector<cni::IpNet> blackholes_added;
};

class NodeSide {
 public:
  NodeSide(const OverlayConfig& cfg, const Underlay& underlay, Tunnel& tunnel, ipam::KvStore& store,
           cni::Logger& log);

  // Makes the node ready and returns its state; writes nothing when everything is in place
  // (counted in `writes`). `stored` is this node's record when the caller has read it (the
  // agent's pass); otherwise it is read here.
  NodeState ensure(cni::NlSocket& sock, Writes& writes,
                   const std::optional<ipam::records::NodeRecord>* stored = nullptr);
  // Undoes what `state` says ensure() made (best effort, logged).
  void undo(cni::NlSocket& sock, const NodeState& state);

  // The blackhole route of every block in `blocks` this node holds: traffic to an unallocated
  // address of a local block is dropped here instead of following the default route out and
  // back (a loop). Adds those that are missing (EEXIST: there already) and returns them.
  std::vector<cni::IpNet> add_blackholes(cni::NlSocket& sock, const std::vector<cni::IpNet>& blocks,
                                         Writes& writes);
  // The blocks of the pools holding `ips` (what an ADD's addresses fall in).
  std::vector<cni::IpNet> blocks_of(const std::vector<cni::IpAddress>& ips) const;

  // CHECK: the device (Tunnel::check_device), its tunnel addresses and this node's record.
  void check(cni::NlSocket& sock);

 private:
  void ensure_forwarding(Writes& writes);
  std::vector<cni::IpAddress> tunnel_addresses(const OverlayNode& stored, NodeState& state);

  const OverlayConfig& cfg_;
  const Underlay& underlay_;
  Tunnel& tunnel_;
  ipam::KvStore& store_;
  cni::Logger& log_;
};

}  // namespace overlay
