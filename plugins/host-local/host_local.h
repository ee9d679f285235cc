#pragma once

#include <optional>
#include <vector>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"

// host-local IPAM: addresses from configured ranges, leases as files on this node,
// drop-in compatible with containernetworking/plugins' host-local (config keys, on-disk
// format, messages). See plugins/host-local/README.md.
namespace host_local {

// One address per range set, routes and DNS from the config. Fails (and leaves nothing
// behind) when the attachment already holds an address of a set, a requested address
// cannot be had, or a set is used up.
cni::Result cmd_add(const cni::CmdArgs& args);
// Releases the attachment's leases; an unknown attachment or network is success.
void cmd_del(const cni::CmdArgs& args);
// The attachment holds an address in every range set, and the prevResult addresses inside
// the configured ranges are exactly the ones it holds.
void cmd_check(const cni::CmdArgs& args);
// Releases every lease whose attachment is not in `valid`; nullopt (no GC key in the
// config) releases nothing.
void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid);
// kErrNotAvailable (50) when a range set is used up or leases cannot be written.
void cmd_status(const cni::CmdArgs& args);

cni::Plugin plugin();

}  // namespace host_local
