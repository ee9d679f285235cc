#pragma once

#include "libcni/protocol/skel.h"
#include "overlay/verbs.h"

// The ipip plugin: routed pods (overlay/pod_side.h) on Calico's IPIP data plane (tunl0),
// whose routes to other nodes come from global-ipam's block table (`ipip sync`) instead of
// BIRD. Its verbs are the overlays' (overlay/verbs.h) with the ipip tunnel
// (plugins/ipip/ipip_tunnel.h). See plugins/ipip/README.md for keys, verbs and error codes.
namespace ipip {

// Host veth names "ipip" + 11 hex digits; the pod end's temporary name "ipp" + 12.
const overlay::OverlayPlugin& overlay_plugin();

cni::Plugin plugin();

}  // namespace ipip
