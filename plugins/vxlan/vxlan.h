#pragma once

#include <optional>
#include <vector>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"
#include "overlay/pod_side.h"

// The vxlan plugin: routed pods (overlay/pod_side.h) on a VXLAN overlay whose routes to other
// nodes come from global-ipam's block table (`vxlan sync`, overlay/sync_command.h). See
// plugins/vxlan/README.md for keys, verbs and error codes.
namespace vxlan {

// Host veth names "vx" + 13 hex digits; the pod end's temporary name "vxp" + 12.
overlay::PodSideSpec pod_side_spec(int mtu = 0);

// Node side first (under the node's setup lock: device, tunnel addresses, record), then the
// pod's veth while the IPAM ADD runs, its configuration, and the blackhole of its block. A
// failure undoes this ADD's steps; node state it made is undone too when no other ADD is in
// flight (overlay/node_guard.h).
cni::Result cmd_add(const cni::CmdArgs& args);
// IPAM DEL, and the host veth (with the pod end and the host routes). The device stays.
void cmd_del(const cni::CmdArgs& args);
// IPAM CHECK, the device against the config, the node record, the pod side.
void cmd_check(const cni::CmdArgs& args);
// 50 when the underlay is gone or a device of the name is not a vxlan; 51 when the device
// exists but differs from the config or is down; then IPAM STATUS (the store).
void cmd_status(const cni::CmdArgs& args);
// IPAM GC, and the host veths of this network whose attachment is not valid.
void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid);

cni::Plugin plugin();

}  // namespace vxlan
