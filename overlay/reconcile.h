#pragma once

#include <string>
#include <vector>

#include "libcni/core/log.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/route.h"
#include "overlay/cluster.h"
#include "overlay/tunnel.h"

// The route agent's engine: from the block table and the node records to the kernel, with
// the fewest writes. Desired state, for this node `self`:
//   - every block of `self`: a blackhole (local addresses not in use are dropped here);
//   - every block of a remote node the tunnel can reach: Tunnel::route_to (vxlan:
//     `<block> via <its tunnel address> dev strait.vxlan onlink`), after the tunnel's
//     per-node objects (Tunnel::add_peers);
//   - every address allocated by a node other than its block's owner (borrowed, strictAffinity
//     false) and not by `self`: a /32 (/128) to the node that holds it, as Calico exports
//     borrowed IPs;
// all with kRouteProtocol in the main table. The kernel's routes of that protocol are read
// once, compared by destination, and only the differences are written (replace, add,
// delete); nothing without our protocol is touched. A pass is O(nodes + blocks +
// borrowed addresses) after one route dump and one neighbour dump.
namespace overlay {

struct ReconcileReport {
  Writes writes;
  size_t peers = 0;                      // remote nodes reached
  size_t routes = 0;                     // desired routes
  std::vector<std::string> unreachable;  // remote nodes skipped, with why
};

ReconcileReport reconcile(cni::NlSocket& sock, Tunnel& tunnel, int device_index,
                          const std::string& self, const Cluster& cluster, cni::Logger& log);

}  // namespace overlay
