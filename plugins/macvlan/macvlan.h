#pragma once

#include <optional>
#include <vector>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"

// The macvlan plugin: gives a pod an interface of its own MAC on a host (or pod-side)
// master device, addresses from the IPAM delegate. Drop-in for containernetworking/plugins'
// macvlan; see plugins/macvlan/README.md for keys, verbs and error codes.
namespace macvlan {

// Creates the macvlan under a temporary name directly in the pod netns, renames it to
// CNI_IFNAME there, runs IPAM ADD (unless `ipam: {}`), configures addresses, routes and
// announcements. Any failure undoes every step: no link, no lease.
cni::Result cmd_add(const cni::CmdArgs& args);
// IPAM DEL first, then deletes CNI_IFNAME in the pod netns if it is a macvlan (and, when
// prevResult names its MAC, that MAC). A missing netns, link or lease is success.
void cmd_del(const cni::CmdArgs& args);
// IPAM CHECK, then the interface of prevResult: a macvlan of the configured mode with the
// recorded MAC, its addresses and the routes of prevResult present.
void cmd_check(const cni::CmdArgs& args);
// kErrNotAvailable when the master (host netns) is missing, then IPAM STATUS.
void cmd_status(const cni::CmdArgs& args);
// Forwarded to IPAM: the plugin keeps no state of its own outside pod namespaces.
void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid);

cni::Plugin plugin();

}  // namespace macvlan
