#pragma once

#include <optional>
#include <vector>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"

// global-ipam: the cluster-wide IPAM. Pools cut into blocks that nodes claim, on a file or
// etcd store shared by every node. See plugins/global-ipam/README.md.
//
// Error codes besides the spec's: 100 (ipam::kErrNoAddress) "pool X exhausted", 101
// (kErrAddressUnavailable) a requested address cannot be had, 103 (kErrLeaseMismatch) CHECK
// found the attachment's addresses differ; 11 when the store stays unreachable (or a block
// stays contended) past timeoutMs, 5 for an OS fault of the file store.
namespace global_ipam {

// The attachment's addresses: those it holds already (a retried ADD), else new ones, one
// per address family of the pools that select this node.
cni::Result cmd_add(const cni::CmdArgs& args);
// Releases the attachment's addresses; unknown attachments are success.
void cmd_del(const cni::CmdArgs& args);
// The attachment holds an address of every family, and the prevResult addresses inside the
// pools are exactly the ones it holds.
void cmd_check(const cni::CmdArgs& args);
// Releases this node's allocations of the network whose attachment is not in `valid`;
// nullopt (no GC key) releases nothing.
void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid);
// kErrNotAvailable (50) when the store cannot be reached or this node could not get an
// address of some family.
void cmd_status(const cni::CmdArgs& args);

cni::Plugin plugin();

}  // namespace global_ipam
