#pragma once

#include "libcni/core/log.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/sysfs.h"
#include "plugins/sriov/vf_control.h"
#include "plugins/sriov/vf_record.h"

// Putting a VF back as its record saved it, and dropping the record: the one path of DEL, of
// a failed ADD's rollback, of GC, and of an ADD that finds a stale record (its pod went away
// without a DEL). Safe to run again after it was killed at any point: it finds the netdev
// wherever a killed ADD or an earlier run left it. Callers hold the VF's lock and have checked
// that the record is the one to act on (owned by the attachment being deleted).
namespace sriov {

struct ReleaseContext {
  const StateDir& state;
  VfControl& vfc;
  cni::NlSocket& host;  // bound to the host netns
  const cni::Netns& host_ns;
  const cni::Sysfs& sysfs;
  cni::Logger& log;
};

// 1. The settings the ADD applied, each back to its saved value through the PF (sriov-cni's
//    ResetVFConfig, before the netdev: some drivers refuse a netdev MAC with trust off); a
//    setting the driver refuses is logged and the others still go back.
// 2. The netdev: out of the owner's netns if it still exists (found as CNI_IFNAME or the
//    temporary name), else from the host (where the kernel puts a physical netdev whose netns
//    died); down, its host name, MAC and MTU, up again if it was.
// 3. The record and the owner's index.
// Throws when the netdev cannot be brought back (its host name is taken, say): the record
// stays, so a retry finishes the job. Returns the netdev's name on the host ("" when it has
// none): the saved one.
std::string release_vf(ReleaseContext& ctx, const VfRecord& record);

// Whether the record's holder still runs: its netns exists (and is the same netns, by inode,
// when the record knows it). A record whose netns is gone is stale.
bool holder_alive(const VfRecord& record);

// The settings release_vf sends: the applied ones, at their saved values. A spoofchk the driver
// never reported cannot be put back and is left out; an unreported trust goes back off (as
// sriov-cni does); a VLAN protocol the driver reported as 0 goes back as 802.1Q.
cni::VfSettings restore_settings(const VfRecord& record);

}  // namespace sriov
