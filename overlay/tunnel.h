#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/core/log.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/route.h"
#include "overlay/node_record.h"

// What a tunnel (vxlan, later ipip) plugs into the shared node side and route agent: its
// device, the attributes it publishes in this node's record, how it reaches a remote node
// (the route to a remote block) and the per-remote-node kernel objects it needs besides that
// route (vxlan: a neighbour and an FDB entry; ipip: none).
namespace overlay {

// Kernel writes of one pass, counted where they are made: the agent's "a pass over an
// unchanged table makes no kernel write" is total() == 0 (test/integration/vxlan_test.cpp
// checks it from `vxlan sync`'s report).
struct Writes {
  int node = 0;  // device, its addresses, sysctls
  int routes_added = 0;
  int routes_replaced = 0;
  int routes_deleted = 0;
  int peers = 0;  // per-remote-node objects: adds, replaces, deletes
  int nat = 0;    // strait-nat tables replaced or deleted (overlay/nat.h)
  int total() const { return node + routes_added + routes_replaced + routes_deleted + peers + nat; }
};

class Tunnel {
 public:
  virtual ~Tunnel() = default;

  virtual const std::string& device() const = 0;  // "strait.vxlan", "tunl0"
  virtual std::string kind() const = 0;           // "vxlan": handles, log lines
  // Whether remote nodes route through addresses on this node's device (vxlan: the onlink
  // next hop that its neighbour entry resolves). NodeSide then allocates them from the pools.
  virtual bool needs_tunnel_addresses() const = 0;
  // Before an ADD or STATUS changes anything: throws cni::Error{kErrNotAvailable} when this
  // kernel cannot make the device at all (ipip: no CONFIG_NET_IPIP), so a failed ADD has
  // nothing to undo. Changes nothing.
  virtual void require_support(cni::NlSocket&) {}

  // The device as the config wants it, made or repaired when it is missing, down or differs
  // (counting writes); `created` says whether it was made now. Returns it as the kernel has it.
  virtual cni::LinkInfo ensure_device(cni::NlSocket& sock, Writes& writes, bool* created,
                                      cni::Logger& log) = 0;
  // CHECK: throws cni::Error "CHECK failed: ..." naming what differs from the config.
  virtual void check_device(cni::NlSocket& sock) = 0;

  // This node's attributes besides the tunnel addresses (vxlan: vtepMAC, vni).
  virtual std::map<std::string, std::string> node_attributes() const = 0;
  // Whether a remote node's record holds what this tunnel needs to reach it; `why` otherwise.
  virtual bool reachable(const OverlayNode& remote, std::string* why) const = 0;
  // The route to `dst` (a remote block, or one borrowed address) held by a reachable
  // `remote`, through the device; nullopt when there is none for that family. The engine sets
  // the table and protocol.
  virtual std::optional<cni::RouteSpec> route_to(const OverlayNode& remote, const cni::IpNet& dst,
                                                 int device_index) const = 0;
  // The per-remote-node objects. add_peers makes them match `peers` (before any route through
  // them is added: the kernel would otherwise resolve the next hop itself); remove_stale_peers
  // then deletes those of nodes not in `peers` (after the routes through them are gone), using
  // what add_peers read. Both count their writes and write nothing when all is in place.
  virtual void add_peers(cni::NlSocket& sock, int device_index,
                         const std::vector<OverlayNode>& peers, Writes& writes,
                         cni::Logger& log) = 0;
  virtual void remove_stale_peers(cni::NlSocket& sock, int device_index, Writes& writes,
                                  cni::Logger& log) = 0;
};

}  // namespace overlay
