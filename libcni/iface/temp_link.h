#pragma once

#include <string>
#include <string_view>

#include "libcni/core/log.h"
#include "libcni/kernel/netlink.h"
#include "libcni/protocol/env.h"

// Temporary device names, and the device a killed ADD leaves under one. A plugin creates
// its device under a name no host or pod device has and renames it to CNI_IFNAME in the pod
// netns: the kernel checks a new device's name in the netns the request comes from before
// moving it, so creating it as CNI_IFNAME could collide with a host device of that name
// (upstream macvlan.go, "due to kernel bug"). macvlan uses prefix "mv"; the overlays' pod
// veth end and sriov's VF rename pass their own prefix.
//
// The name is derived from the attachment (container ID, ifname) rather than random: a
// plugin killed between creating the device and renaming it leaves it under this name, and
// DEL (or a retried ADD) of the same attachment derives the name again and deletes it (found
// by test/integration/fault_injection_test.cpp). The runtime never runs two operations on
// one attachment at once (SPEC), so the name is never in use by a live ADD when DEL looks.
namespace cni {

// `prefix` + hex digits of cni::stable_hash64({container_id, ifname}), 15 bytes in all (the
// longest interface name). Stable across versions: a pinned value in iface_temp_link_test.
// Throws std::invalid_argument for a prefix longer than 11 bytes (fewer than 4 digits).
std::string temp_link_name(std::string_view prefix, const Env& env);

// Deletes the device named `name` in `sock`'s netns when it is of `kind` (IFLA_INFO_KIND):
// what an ADD killed between creating and renaming it left. A device of another kind is not
// ours and stays. `where` names the netns in the log line (`netns "/run/netns/p"`). Returns
// whether it deleted one.
bool delete_leftover_link(NlSocket& sock, const std::string& name, std::string_view kind,
                          std::string_view where, Logger& log);

}  // namespace cni
