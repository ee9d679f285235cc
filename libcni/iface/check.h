#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/result.h"

// CHECK of a pod interface against prevResult (SPEC "CHECK"): the steps every plugin that
// configures a pod interface shares (macvlan; next vxlan, ipip, sriov), each throwing
// Error{kErrInternal} "CHECK failed: ..." as upstream's plain Go errors come out of skel. The
// plugin adds its own checks of the device (macvlan's mode, a VF's PF) between them. DEL uses
// find_prev_interface and same_mac to leave a device that is not the attachment's alone.
namespace cni {

// The index in prev.interfaces of the interface this attachment made: name == CNI_IFNAME and
// sandbox == CNI_NETNS (containerd finds the pod's IPs through it the same way).
std::optional<size_t> find_prev_interface(const Result& prev, const Env& env);

// Whether a result's MAC (any case, any spelling MacAddress parses) is the kernel's
// lowercase `kernel_mac`. An unparsable one is compared as it is.
bool same_mac(const std::string& result_mac, const std::string& kernel_mac);

// "a veth", "a macvlan"; "not a virtual device" for a device without IFLA_INFO_KIND.
std::string describe_kind(const LinkInfo& link);

// Throws Error{kErrInternal, "CHECK failed: " + msg}.
[[noreturn]] void check_failed(const std::string& msg);

// CNI_IFNAME in the pod netns (`sock`), of `kind` ("macvlan", "veth"):
//   interface "net1" not found in netns "/run/netns/p"
//   interface "net1" is a veth, not a macvlan
LinkInfo check_link(NlSocket& sock, const Env& env, std::string_view kind);

// The link's MAC is the one prevResult recorded, when it recorded one:
//   interface "net1" has MAC 02:..:01, prevResult says 02:..:09
void check_mac(const LinkInfo& link, const Interface& prev_iface);

// Every address prevResult gives interface `iface_index` is on `link`:
//   address 192.0.2.10/24 of prevResult is not on interface "net1"
void check_addresses(NlSocket& sock, const LinkInfo& link, const Result& prev, size_t iface_index);

// Every prevResult route is in the pod's routing table (`sock`): same destination and table,
// and the same gateway when the route names one. Later plugins may have changed its device or
// metric, which CHECK tolerates (SPEC: CHECK "must tolerate later plugins").
//   route 0.0.0.0/0 via 192.0.2.1 of prevResult is not in the routing table of netns "..."
void check_routes(NlSocket& sock, const Result& prev, const std::string& netns);

}  // namespace cni
