#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/core/log.h"
#include "libcni/core/rollback.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"

// The routed pod side of the overlays (Calico style), the same for vxlan and ipip: a veth
// pair whose pod end is created in the pod netns as CNI_IFNAME (on kernels that look the new
// name up in the host netns, under a temporary name and renamed there, when the host has a
// link of that name), and whose host end has a name derived from (network, container ID,
// ifname), so DEL finds it without state. The pod gets each address as /32 (/128) and a
// default route via a link-local gateway (169.254.1.1, fe80::1) reached onlink; the host end
// answers for the gateway by proxy ARP (proxy NDP) and routes each pod address to the veth.
namespace overlay {

inline constexpr char kGatewayV4[] = "169.254.1.1";
inline constexpr char kGatewayV6[] = "fe80::1";
cni::IpAddress pod_gateway(int family);

struct PodSideSpec {
  // Host veth names: prefix + hash digits, 15 bytes ("vx" for vxlan).
  std::string host_prefix;
  // The pod end's temporary name where CNI_IFNAME cannot be made directly (cni::temp_link_name;
  // "vxp" for vxlan).
  std::string temp_prefix;
  int mtu = 0;  // both ends: the tunnel's MTU
};

// hashed_name(prefix, {network, container id, ifname}) padded to 15 bytes.
std::string host_veth_name(std::string_view prefix, const std::string& network,
                           const cni::Env& env);
// The IFLA_IFALIAS of a host veth: "<network>/<containerID>/<ifname>" (GC reads it back).
std::string host_veth_alias(const std::string& network, const cni::Env& env);

// The veth of an ADD in progress.
struct PodVeth {
  cni::LinkInfo host;  // in the host netns, down until prepare_pod_side
  cni::LinkInfo pod;   // in the pod netns as CNI_IFNAME, down until prepare_pod_side (IPv4
                       // only) or configure_pod_side
  // What prepare_pod_side did: the host end's sysctls of each family, and the pod's routes
  // read (whether it had a default route of each family before this ADD: a second network).
  bool v4_ready = false, v6_ready = false;
  bool pod_routes_read = false;
  bool pod_default_v4 = false, pod_default_v6 = false;
};

// Creates the pair, the pod end under CNI_IFNAME (deleting what a killed ADD of this
// attachment left under the same names when the creation finds them), and registers its
// deletion with `rollback`. Runs while the IPAM ADD is in flight. Code 4 (kErrInvalidEnv) when
// CNI_IFNAME is taken in the pod netns.
PodVeth create_pod_veth(const cni::CmdArgs& args, const PodSideSpec& spec,
                        const std::string& network, const cni::Netns& pod, cni::NlSocket& host,
                        cni::NlSocket& pod_sock, cni::Rollback& rollback);

// What needs no IPAM result, done while the IPAM ADD is in flight: the host end's sysctls for
// the families `v4` and `v6` (those the pod's pools have), the host end up (and the pod end,
// when the pod has no IPv6), the pod's routes read. configure_pod_side does what is still
// missing for the families the IPAM returned.
void prepare_pod_side(cni::NlSocket& host, cni::NlSocket& pod_sock, PodVeth& veth, bool v4,
                      bool v6);

// Configures both ends with the IPAM result (its addresses become /32 and /128, its gateways
// are replaced by the link-local ones) and returns the plugin's result: interfaces [host
// veth, pod interface], ips on the pod interface, default routes (or the IPAM's routes) via
// the link-local gateways; when the pod has a default route of a family already (a second
// network), routes to `pools` (the overlay's CIDRs) instead of a default one. The host-side
// sysctls: proxy_arp and proxy_delay 0 on the host veth; with IPv6 also proxy_ndp and accept_dad 0
// there, and the proxy entry for fe80::1.
cni::Result configure_pod_side(const cni::CmdArgs& args, const cni::Netns& pod, cni::NlSocket& host,
                               cni::NlSocket& pod_sock, PodVeth& veth, const cni::Result& ipam,
                               const std::vector<cni::IpNet>& pools);

// DEL's kernel half: the host veth, which takes the pod end (under whatever name) and the
// host routes with it; DEL never enters the pod netns. A missing netns or link is success; a
// device of the derived name that is not a veth is left alone.
void delete_pod_side(const cni::CmdArgs& args, const PodSideSpec& spec, const std::string& network);

// CHECK: the pod interface is a veth whose peer is the derived host veth, it carries the
// prevResult addresses and routes, and the host routes each address to the host veth with
// proxy ARP on. Throws cni::Error "CHECK failed: ...".
void check_pod_side(const cni::CmdArgs& args, const PodSideSpec& spec, const std::string& network,
                    const cni::Netns& pod);

// GC: deletes the host veths of `network` (by their alias) whose attachment is not valid.
// Returns their names.
std::vector<std::string> collect_pod_sides(cni::NlSocket& host, const PodSideSpec& spec,
                                           const std::string& network,
                                           const std::vector<cni::Attachment>& valid,
                                           cni::Logger& log);

}  // namespace overlay
