#pragma once

#include "libcni/protocol/skel.h"
#include "overlay/verbs.h"

// The vxlan plugin: routed pods (overlay/pod_side.h) on a VXLAN overlay whose routes to other
// nodes come from global-ipam's block table (`vxlan sync`, overlay/sync_command.h). Its verbs
// are the overlays' (overlay/verbs.h) with the vxlan tunnel (plugins/vxlan/vxlan_tunnel.h).
// See plugins/vxlan/README.md for keys, verbs and error codes.
namespace vxlan {

// Host veth names "vx" + 13 hex digits; the pod end's temporary name "vxp" + 12.
const overlay::OverlayPlugin& overlay_plugin();

cni::Plugin plugin();

}  // namespace vxlan
