#pragma once

#include <optional>
#include <string>
#include <vector>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"

// The bandwidth plugin: per-attachment ingress and egress limits as token buckets, chained
// after the plugin that made the interface. Drop-in for containernetworking/plugins'
// bandwidth on veth pods (same ifb name, devices and qdisc handles), and also shapes pods
// whose interface has no peer in the host (macvlan, ipvlan, SR-IOV VF) inside their netns.
// See plugins/bandwidth/README.md for keys, devices, verbs and error codes.
namespace bandwidth {

// What a test can point elsewhere: the sysfs tree a VF's PF is looked up in.
struct System {
  std::string sysfs_root = "/sys";
};

// Shapes the prevResult's CNI_IFNAME. A veth whose peer is in the host netns (the netns the
// runtime runs us in) is shaped on that peer, as upstream: a tbf 1: root for ingress, an ingress
// qdisc + u32 redirect to an ifb with a tbf 1: for egress. Any other interface is shaped in
// the pod netns: a tbf 1: root on it for egress (or, with useVfRate, the VF's max_tx_rate), an
// ingress qdisc + u32 redirect to an ifb in the pod netns for ingress. The ifb is appended to
// the result. Any failure undoes every step.
cni::Result cmd_add(const cni::CmdArgs& args, const System& sys);
// Removes what ADD made: the ingress qdisc whose filters redirect to the attachment's ifb, the
// ifb, the tbf 1: root; a VF's rate (useVfRate). Also an ifb upstream made. A missing device,
// qdisc or netns is success.
void cmd_del(const cni::CmdArgs& args, const System& sys);
// Recomputes every qdisc, filter and ifb ADD would make and compares them with the kernel's.
void cmd_check(const cni::CmdArgs& args, const System& sys);
// The config parses: bandwidth needs nothing else to be ready.
void cmd_status(const cni::CmdArgs& args);
// Deletes the host netns ifb devices (and the redirects to them) of this network's
// attachments that are not in the valid list; devices whose alias does not name this network
// (another network's, or upstream's, which carry none) are left alone.
void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid);

cni::Plugin plugin();

// Upstream's ifb name: "bwp" + the first 12 hex digits of SHA-512(network + container ID).
std::string host_ifb_name(const std::string& network, const std::string& container_id);
// The ifb of an attachment shaped inside its pod: "bwi" + 12 hex digits of cni::hashed_name
// over (network, container ID, ifname), so two attachments of one pod never share it.
std::string pod_ifb_name(const std::string& network, const std::string& container_id,
                         const std::string& ifname);
// The alias of an ifb: "strait-bandwidth <network> <container ID> <ifname>", which GC reads.
std::string ifb_alias(const std::string& network, const std::string& container_id,
                      const std::string& ifname);

}  // namespace bandwidth
