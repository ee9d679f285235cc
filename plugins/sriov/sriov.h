#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"
#include "plugins/sriov/vf_control.h"

// The sriov plugin: hands a pod an SR-IOV VF (its netdev, or only its PF-side settings for a
// VF bound to vfio-pci / uio), drop-in for k8snetworkplumbingwg/sriov-cni. The VF's state is
// saved before anything changes and put back exactly on DEL, on any failure, and when its pod
// went away without a DEL; see plugins/sriov/README.md for keys, flow and state files.
namespace sriov {

// What the verbs take from outside the config: the tests pass a fake PF (no kernel here has
// one) and a short lock timeout.
struct Deps {
  VfControlFactory vf_control = netlink_vf_control();
  // How long a verb waits for the per-VF lock (sriov-cni's pciLockAcquireTimeout).
  std::chrono::milliseconds lock_timeout{60000};
};

// Resolves the VF in sysfs, takes its lock, refuses a VF another live pod holds, saves its
// state and records the allocation, applies the VF settings through the PF, moves the netdev
// into the pod (temporary name, CNI_IFNAME there, MAC, up) and configures IPAM's addresses.
// Any failure puts the VF back as it was.
cni::Result cmd_add(const cni::CmdArgs& args, const Deps& deps = {});
// IPAM DEL, then, if this attachment still holds the VF, restores the VF settings and returns
// the netdev to the host under its name with its MAC and MTU. A missing record, netns or VF is
// success; a VF another attachment holds now is never touched (sriov-cni #219).
void cmd_del(const cni::CmdArgs& args, const Deps& deps = {});
// IPAM CHECK, then the VF: held by this attachment, its PF-side settings as configured, its
// netdev in the pod netns under CNI_IFNAME with prevResult's MAC, MTU, addresses and routes.
void cmd_check(const cni::CmdArgs& args, const Deps& deps = {});
// kErrNotAvailable when a config naming a VF statically finds no PF netdev for it; then IPAM.
void cmd_status(const cni::CmdArgs& args, const Deps& deps = {});
// Returns the VFs of attachments not in the valid list (and drops their records), then IPAM GC.
void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid,
            const Deps& deps = {});

cni::Plugin plugin(Deps deps = {});

}  // namespace sriov
