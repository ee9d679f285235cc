#include "plugins/bandwidth/bandwidth.h"

#include <linux/if.h>

#include <cerrno>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "libcni/core/error.h"
#include "libcni/core/hash.h"
#include "libcni/core/log.h"
#include "libcni/core/rollback.h"
#include "libcni/core/sha512.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/netns_id.h"
#include "libcni/kernel/qdisc.h"
#include "libcni/kernel/sysfs.h"
#include "libcni/kernel/tc_filter.h"
#include "libcni/kernel/vf.h"
#include "plugins/bandwidth/bandwidth_config.h"
#include "plugins/bandwidth/small_band.h"
#include "plugins/bandwidth/tbf_sizing.h"

namespace bandwidth {

namespace {

using cni::Error;

constexpr const char* kAliasTag = "strait-bandwidth";

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// Interface kinds a token bucket and a redirect work on. Anything else (a bridge, a bond, an
// ifb, loopback) is refused before anything changes: shaping it would shape other traffic or
// loop.
constexpr const char* kShapeableKinds[] = {"veth", "macvlan", "macvtap", "ipvlan", "ipvtap",
                                           "vlan", "vxlan",   "geneve",  "tun"};
constexpr const char* kShapeableText =
    "veth, macvlan, macvtap, ipvlan, ipvtap, vlan, vxlan, geneve, tap, or a physical device "
    "such as an SR-IOV VF";

bool shapeable(const cni::LinkInfo& link) {
  if (link.kind.empty()) return (link.flags & IFF_LOOPBACK) == 0;  // a physical device
  for (const char* k : kShapeableKinds) {
    if (link.kind == k) return true;
  }
  return false;
}

// The port through which a VF's rate is set: its PF's netdev in the host netns and its index
// there (sysfs: the VF's physfn, the PF's virtfn<N> naming it, the PF's net/).
struct VfPort {
  std::string pf_netdev;
  int vf_index = 0;
};

// nullopt when `device_id` is not a PCI address of an SR-IOV VF under `sysfs_root`. Throws
// std::system_error naming the PF when sysfs is inconsistent (no netdev, no virtfn link).
std::optional<VfPort> find_vf_port(const std::string& device_id, const std::string& sysfs_root) {
  if (!cni::is_pci_address(device_id)) return std::nullopt;
  const cni::Sysfs sys(sysfs_root);
  const auto pf = sys.pci_physfn(device_id);
  if (!pf) return std::nullopt;
  const auto index = sys.pci_vf_index(*pf, device_id);
  const auto netdevs = sys.pci_netdevs(*pf);
  if (!index || netdevs.empty()) {
    throw std::system_error(ENOENT, std::generic_category(),
                            "sysfs: the PF " + *pf + " of VF " + device_id +
                                (index ? " has no netdev" : " has no virtfn link to it"));
  }
  return VfPort{netdevs.front(), *index};
}

// The VF's max_tx_rate through its PF (0: unlimited), no min_tx_rate.
void set_vf_max_rate(cni::NlSocket& host_sock, const VfPort& port, uint32_t mbps) {
  cni::set_vf(host_sock, port.pf_netdev, port.vf_index,
              {.rate = cni::VfRate{.min_tx_rate = 0, .max_tx_rate = mbps}});
}

// Where the limits are applied. kHostVeth: on the host end of the pod's veth, as upstream.
// kInPod: on the pod's interface inside its netns (no host end to shape on).
enum class Placement { kHostVeth, kInPod };

// One attachment's shaping, derived from the config and the kernel before anything changes.
// `dev` is the device the limits sit on: it transmits in one direction (a tbf root) and
// receives in the other (an ingress qdisc redirecting to an ifb whose tbf shapes it).
struct Plan {
  Placement placement = Placement::kHostVeth;
  cni::LinkInfo pod_link;
  cni::LinkInfo dev;
  std::optional<cni::TbfParams> transmit;  // tbf 1: on dev
  std::optional<cni::TbfParams> receive;   // tbf 1: on the ifb
  // useVfRate: the transmit direction is the VF's max_tx_rate through its PF instead.
  std::optional<VfPort> vf;
  uint32_t vf_mbps = 0;
  std::string ifb_name;
  std::string ifb_alias;
  std::string where;  // "host netns" or "pod netns \"...\"", for messages
  // What was changed from the configured values and why (a capped burst, a rounded VF rate):
  // ADD logs them as warnings.
  std::vector<std::string> notes;
};

// The host end of the pod's veth: the pod's end names its peer's namespace by an id the pod
// netns gave it, which must be the one it gives the host netns (interface indexes repeat in
// every namespace, so an index alone could name any host device); and the device at that
// index in the host netns must be a veth naming the pod's end back.
std::optional<cni::LinkInfo> host_peer(cni::NlSocket& host, cni::NlSocket& pod,
                                       const cni::LinkInfo& pod_link) {
  if (pod_link.kind != "veth" || pod_link.link_index <= 0 || !pod_link.link_netnsid) {
    return std::nullopt;
  }
  const std::optional<int32_t> host_id = cni::netns_id(pod, cni::Netns::current());
  if (!host_id || *host_id != *pod_link.link_netnsid) return std::nullopt;
  auto peer = cni::find_link(host, pod_link.link_index);
  if (!peer || peer->kind != "veth" || peer->link_index != pod_link.index || !peer->link_netnsid) {
    return std::nullopt;
  }
  return peer;
}

cni::LinkInfo find_pod_link(cni::NlSocket& pod_sock, const cni::Env& env) {
  auto link = cni::find_link(pod_sock, env.ifname);
  if (!link) {
    throw Error(cni::kErrInvalidEnv, "CNI_IFNAME: interface " + in_quotes(env.ifname) +
                                         " not found in netns " + in_quotes(env.netns) +
                                         " (bandwidth shapes the interface an earlier plugin "
                                         "of the chain made)");
  }
  if (!shapeable(*link)) {
    const std::string what = link->kind.empty() ? "the loopback device" : "a " + link->kind;
    throw Error(cni::kErrInvalidConfig, "invalid config: interface " + in_quotes(env.ifname) +
                                            " in netns " + in_quotes(env.netns) + " is " + what +
                                            ", which bandwidth cannot shape (it shapes " +
                                            kShapeableText + ")");
  }
  return *link;
}

Plan make_plan(const BandwidthConfig& cfg, const cni::Env& env, const std::string& network,
               cni::NlSocket& host_sock, cni::NlSocket& pod_sock, const System& sys) {
  Plan p;
  auto note = [&p](const std::string& direction, const std::string& text) {
    if (!text.empty()) p.notes.push_back(direction + ": " + text);
  };
  p.pod_link = find_pod_link(pod_sock, env);
  auto peer = host_peer(host_sock, pod_sock, p.pod_link);
  p.placement = peer ? Placement::kHostVeth : Placement::kInPod;
  p.dev = peer ? *peer : p.pod_link;
  p.where = peer ? std::string("host netns") : "pod netns " + in_quotes(env.netns);
  // The host end transmits what goes to the pod; the pod's interface what leaves it.
  const Limit& transmit = peer ? cfg.ingress : cfg.egress;
  const Limit& receive = peer ? cfg.egress : cfg.ingress;
  const char* transmit_name = peer ? "ingress" : "egress";
  const char* receive_name = peer ? "egress" : "ingress";
  const Sizing sizing{.latency_ms = cfg.latency_ms, .max_burst = cfg.max_burst, .mtu = p.dev.mtu};

  if (cfg.use_vf_rate && cfg.egress.shaped()) {
    if (peer) {
      throw Error(cni::kErrInvalidConfig, "invalid config: \"useVfRate\": interface " +
                                              in_quotes(env.ifname) + " is a veth whose peer " +
                                              in_quotes(peer->name) +
                                              " is in the host netns, not an SR-IOV VF");
    }
    if (cfg.device_id.empty()) {
      throw Error(cni::kErrInvalidConfig,
                  "invalid config: \"useVfRate\": the VF's PCI address is needed (\"deviceID\" or "
                  "\"runtimeConfig.deviceID\", as the SR-IOV device plugin sets it)");
    }
    const std::optional<VfPort> vf = find_vf_port(cfg.device_id, sys.sysfs_root);
    if (!vf) {
      throw Error(cni::kErrInvalidConfig,
                  "invalid config: \"deviceID\": " + in_quotes(cfg.device_id) +
                      " is not an SR-IOV VF (no physfn in sysfs), so "
                      "\"useVfRate\" cannot limit it");
    }
    if (!cni::find_link(host_sock, vf->pf_netdev)) {
      throw Error(cni::kErrInvalidConfig,
                  "invalid config: \"deviceID\": the PF " + in_quotes(vf->pf_netdev) + " of VF " +
                      in_quotes(cfg.device_id) + " is not in the host netns");
    }
    std::string rounded;
    p.vf_mbps = vf_rate_mbps(cfg.egress.rate, &rounded);
    note("egress", rounded);
    p.vf = vf;
  } else if (transmit.shaped()) {
    SizedTbf t = size_tbf(transmit, sizing);
    note(transmit_name, t.note);
    p.transmit = t.params;
  }
  if (receive.shaped()) {
    SizedTbf t = size_tbf(receive, sizing);
    note(receive_name, t.note);
    p.receive = t.params;
  }
  p.ifb_name = peer ? host_ifb_name(network, env.container_id)
                    : pod_ifb_name(network, env.container_id, env.ifname);
  p.ifb_alias = ifb_alias(network, env.container_id, env.ifname);
  return p;
}

// Nothing may be in the way, checked before the first change: an ADD never replaces a qdisc it
// did not make (and cannot restore). An ifb of this very name and kind is one a killed ADD of
// this attachment left (the name derives from it): it goes.
void check_free(cni::NlSocket& sock, const Plan& p, cni::Logger& log) {
  auto in_use = [&](uint32_t parent, const std::string& what) {
    if (auto q = cni::find_qdisc(sock, p.dev.index, parent)) {
      throw Error(cni::kErrInternal, "interface " + in_quotes(p.dev.name) + " in the " + p.where +
                                         " already has " + what + " (" + q->str() +
                                         "); bandwidth does not replace a qdisc it did not make");
    }
  };
  if (p.transmit) in_use(cni::kTcRoot, "a root qdisc");
  if (!p.receive) return;
  in_use(cni::kTcIngressParent, "an ingress qdisc");
  if (auto ifb = cni::find_link(sock, p.ifb_name)) {
    if (ifb->kind != "ifb") {
      throw Error(cni::kErrInternal, "a " + (ifb->kind.empty() ? "device" : ifb->kind) + " named " +
                                         in_quotes(p.ifb_name) + " is in the " + p.where +
                                         "; bandwidth needs the name for its ifb");
    }
    log.info("deleting ifb " + in_quotes(p.ifb_name) + " in the " + p.where +
             ", left by an ADD of this attachment that did not finish");
    cni::delete_link_if_exists(sock, ifb->index);
  }
}

// Applies `p` on `sock` (the netns of p.dev); every step registers its undo at once.
// Returns the ifb made (or nullopt).
std::optional<cni::LinkInfo> apply(const Plan& p, cni::NlSocket& sock, cni::NlSocket& host_sock,
                                   cni::Rollback& rollback) {
  const int dev = p.dev.index;
  if (p.transmit) {
    cni::add_qdisc(sock, cni::tbf_qdisc(dev, *p.transmit, kTbfHandle));
    rollback.add("delete the root qdisc of " + in_quotes(p.dev.name),
                 [&sock, dev] { cni::delete_qdisc_if_exists(sock, dev, cni::kTcRoot); });
    add_small_band(sock, small_band(dev, *p.transmit, p.dev.mtu));
  }
  if (p.vf) {
    set_vf_max_rate(host_sock, *p.vf, p.vf_mbps);
    rollback.add("reset the rate of VF " + std::to_string(p.vf->vf_index) + " of " +
                     in_quotes(p.vf->pf_netdev),
                 [&host_sock, &p] { set_vf_max_rate(host_sock, *p.vf, 0); });
  }
  if (!p.receive) return std::nullopt;

  cni::IfbSpec spec{.name = p.ifb_name, .mtu = p.dev.mtu, .txqlen = std::nullopt, .up = true};
  // Upstream gives the ifb the host veth's queue length (plugins #1097: a zero one breaks a
  // qdisc that sizes itself from it); the tbf's own limit governs here either way.
  if (p.dev.txqlen > 0) spec.txqlen = p.dev.txqlen;
  cni::create_ifb(sock, spec);
  rollback.add("delete ifb " + in_quotes(p.ifb_name),
               [&sock, &p] { cni::delete_link_if_exists(sock, p.ifb_name); });
  const cni::LinkInfo ifb = cni::get_link(sock, p.ifb_name);
  cni::set_link_alias(sock, ifb.index, p.ifb_alias);
  cni::add_qdisc(sock, cni::tbf_qdisc(ifb.index, *p.receive, kTbfHandle));
  add_small_band(sock, small_band(ifb.index, *p.receive, p.dev.mtu));
  cni::add_qdisc(sock, cni::ingress_qdisc(dev));
  rollback.add("delete the ingress qdisc of " + in_quotes(p.dev.name),
               [&sock, dev] { cni::delete_qdisc_if_exists(sock, dev, cni::kTcIngressParent); });
  cni::add_u32_filter(sock, cni::u32_redirect_all(dev, cni::kTcIngressHandle, ifb.index));
  return cni::get_link(sock, ifb.index);
}

[[noreturn]] void check_failed(const std::string& msg) {
  // Upstream's CHECK errors are plain Go errors, which skel reports as 999.
  throw Error(cni::kErrInternal, "CHECK failed: " + msg);
}

// The tbf 1: root and the small-packet band under it.
void check_tbf(cni::NlSocket& sock, const cni::LinkInfo& link, const cni::TbfParams& want, int mtu,
               const std::string& where) {
  auto q = cni::find_qdisc(sock, link.index, cni::kTcRoot);
  const cni::Qdisc expected = cni::tbf_qdisc(link.index, want, kTbfHandle);
  if (!q || q->kind != "tbf" || q->handle != kTbfHandle || !q->tbf ||
      !cni::same_tbf(*q->tbf, want)) {
    check_failed("interface " + in_quotes(link.name) + " in the " + where + " has root qdisc " +
                 (q ? q->str() : std::string("none")) + ", expected " + expected.str());
  }
  const std::string diff = small_band_difference(sock, small_band(link.index, want, mtu));
  if (!diff.empty()) {
    check_failed("interface " + in_quotes(link.name) + " in the " + where +
                 ": the small-packet band under its tbf: " + diff);
  }
}

// The redirect ADD makes: exactly one u32 rule, match-all, flowid 1:1, one mirred egress
// redirect to the ifb.
void check_redirect(cni::NlSocket& sock, const cni::LinkInfo& dev, const cni::LinkInfo& ifb,
                    const std::string& where) {
  auto q = cni::find_qdisc(sock, dev.index, cni::kTcIngressParent);
  if (!q || q->kind != "ingress" || q->handle != cni::kTcIngressHandle) {
    check_failed("interface " + in_quotes(dev.name) + " in the " + where +
                 " has no ingress qdisc ffff: (" + (q ? q->str() : std::string("none")) + ")");
  }
  const auto filters = cni::list_filters(sock, dev.index, cni::kTcIngressHandle);
  const cni::U32Filter want = cni::u32_redirect_all(dev.index, cni::kTcIngressHandle, ifb.index);
  const bool ok = filters.size() == 1 && filters[0].kind == "u32" &&
                  filters[0].priority == want.priority && filters[0].protocol == want.protocol &&
                  filters[0].u32_keys == std::vector<cni::U32Key>{{}} &&
                  filters[0].classid == want.classid && filters[0].actions.size() == 1 &&
                  filters[0].actions[0].mirred == want.actions[0];
  if (!ok) {
    check_failed("the ingress filters of " + in_quotes(dev.name) + " in the " + where + " (" +
                 std::to_string(filters.size()) + " rule(s)) are not " + want.str());
  }
}

// Whether every filter of dev's ingress qdisc only redirects to `ifb_index`, or to a device
// that is gone (mirred then names index 0): the redirect ADD made, which DEL may remove.
bool only_redirects_to(cni::NlSocket& sock, int dev, int ifb_index) {
  const auto filters = cni::list_filters(sock, dev, cni::kTcIngressHandle);
  if (filters.empty()) return true;
  for (const auto& f : filters) {
    if (f.actions.empty()) return false;
    for (const auto& a : f.actions) {
      if (!a.mirred || a.mirred->kind != cni::MirredKind::kEgressRedirect) return false;
      if (a.mirred->ifindex != 0 && a.mirred->ifindex != ifb_index) return false;
    }
  }
  return true;
}

// Undoes ADD on `dev` in `sock`'s netns: its ingress qdisc (when it only redirects to our
// ifb), the ifb, its tbf 1: root. Each part that is missing is skipped.
void unshape(cni::NlSocket& sock, const cni::LinkInfo& dev, const std::string& ifb_name,
             cni::Logger& log) {
  auto ifb = cni::find_link(sock, ifb_name);
  const int ifb_index = ifb && ifb->kind == "ifb" ? ifb->index : 0;
  if (auto q = cni::find_qdisc(sock, dev.index, cni::kTcIngressParent); q && q->kind == "ingress") {
    if (only_redirects_to(sock, dev.index, ifb_index)) {
      cni::delete_qdisc_if_exists(sock, dev.index, cni::kTcIngressParent);
    } else {
      log.warning("not deleting the ingress qdisc of " + in_quotes(dev.name) +
                  ": its filters do more than redirect to " + in_quotes(ifb_name));
    }
  }
  if (ifb_index > 0) cni::delete_link_if_exists(sock, ifb_index);
  if (auto q = cni::find_qdisc(sock, dev.index, cni::kTcRoot);
      q && q->kind == "tbf" && q->handle == kTbfHandle) {
    cni::delete_qdisc_if_exists(sock, dev.index, cni::kTcRoot);
  }
}

// Deletes the host netns ifb `name` if it is one (ours or upstream's).
void delete_host_ifb(cni::NlSocket& host, const std::string& name) {
  if (auto ifb = cni::find_link(host, name); ifb && ifb->kind == "ifb") {
    cni::delete_link_if_exists(host, ifb->index);
  }
}

struct AliasOwner {
  std::string network, container_id, ifname;
};

std::optional<AliasOwner> parse_alias(const std::string& alias) {
  std::istringstream in(alias);
  std::string tag;
  AliasOwner o;
  if (!(in >> tag >> o.network >> o.container_id >> o.ifname) || tag != kAliasTag) {
    return std::nullopt;
  }
  std::string rest;
  if (in >> rest) return std::nullopt;
  return o;
}

// GC of one stale host ifb: the links whose ingress redirects to it lose that redirect and
// their tbf 1: root (the attachment is gone as far as the runtime knows), then the ifb goes.
void collect_ifb(cni::NlSocket& host, const cni::LinkInfo& ifb, cni::Logger& log) {
  for (const auto& link : cni::list_links(host)) {
    if (link.index == ifb.index) continue;
    auto q = cni::find_qdisc(host, link.index, cni::kTcIngressParent);
    if (!q || q->kind != "ingress") continue;
    bool targets = false;
    for (const auto& f : cni::list_filters(host, link.index, cni::kTcIngressHandle)) {
      for (const auto& a : f.actions)
        targets = targets || (a.mirred && a.mirred->ifindex == ifb.index);
    }
    if (!targets) continue;
    if (only_redirects_to(host, link.index, ifb.index)) {
      unshape(host, link, ifb.name, log);
      return;
    }
  }
  cni::delete_link_if_exists(host, ifb.index);
}

}  // namespace

std::string host_ifb_name(const std::string& network, const std::string& container_id) {
  // utils.MustFormatHashWithPrefix(15, "bwp", network+containerID): sha512, hex, cut to 15.
  const auto digest = cni::sha512(network + container_id);
  return ("bwp" + cni::to_hex(digest.data(), digest.size())).substr(0, 15);
}

std::string pod_ifb_name(const std::string& network, const std::string& container_id,
                         const std::string& ifname) {
  return cni::hashed_name("bwi", {network, container_id, ifname}, 12);
}

std::string ifb_alias(const std::string& network, const std::string& container_id,
                      const std::string& ifname) {
  return std::string(kAliasTag) + " " + network + " " + container_id + " " + ifname;
}

cni::Result cmd_add(const cni::CmdArgs& args, const System& sys) {
  const cni::Env& env = args.env;
  const BandwidthConfig cfg = parse_config(args.conf);
  if (!args.conf.prev_result) {
    throw Error(cni::kErrInvalidConfig,
                "invalid config: must be called as chained plugin "
                "(no prevResult: bandwidth shapes an interface an "
                "earlier plugin made)");
  }
  cni::Result result = *args.conf.prev_result;
  if (cfg.is_zero()) return result;  // upstream: all zero passes prevResult through

  const cni::Netns pod = cni::open_pod_netns(env.netns);
  cni::NlSocket host_sock;  // the netns the runtime runs us in
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const Plan plan = make_plan(cfg, env, args.conf.name, host_sock, pod_sock, sys);
  for (const auto& n : plan.notes) args.log.warning(n);
  cni::NlSocket& sock = plan.placement == Placement::kHostVeth ? host_sock : pod_sock;
  check_free(sock, plan, args.log);

  cni::Rollback rollback(args.log);
  std::optional<cni::LinkInfo> ifb = apply(plan, sock, host_sock, rollback);
  if (ifb) {
    cni::Interface iface;
    iface.name = ifb->name;
    iface.mac = ifb->mac;
    if (plan.placement == Placement::kInPod) iface.sandbox = env.netns;
    result.interfaces.push_back(iface);
  }
  rollback.commit();
  return result;
}

void cmd_del(const cni::CmdArgs& args, const System& sys) {
  const cni::Env& env = args.env;
  const std::string& network = args.conf.name;
  cni::NlSocket host_sock;
  std::optional<cni::Netns> pod;
  if (!env.netns.empty()) {
    try {
      pod = cni::Netns::try_open(env.netns);
    } catch (const std::system_error& e) {
      // A leftover file where a netns was bind-mounted: the namespace is gone.
      if (e.code().value() != EINVAL) throw;
      args.log.info(std::string(e.what()) + "; only the host side is cleaned up");
    }
  }
  if (pod) {
    cni::NlSocket pod_sock = cni::NlSocket::in(*pod);
    if (auto link = cni::find_link(pod_sock, env.ifname)) {
      if (auto peer = host_peer(host_sock, pod_sock, *link)) {
        unshape(host_sock, *peer, host_ifb_name(network, env.container_id), args.log);
      } else {
        unshape(pod_sock, *link, pod_ifb_name(network, env.container_id, env.ifname), args.log);
      }
    }
    const DelConfig del = parse_del_config(args.conf);
    if (del.use_vf_rate && !del.device_id.empty()) {
      try {
        if (auto vf = find_vf_port(del.device_id, sys.sysfs_root)) {
          set_vf_max_rate(host_sock, *vf, 0);
        }
      } catch (const std::exception& e) {
        args.log.warning("not resetting the rate of VF " + in_quotes(del.device_id) + ": " +
                         e.what());
      }
    }
  }
  // The host ifb is found by name alone, also when the netns is gone.
  delete_host_ifb(host_sock, host_ifb_name(network, env.container_id));
}

void cmd_check(const cni::CmdArgs& args, const System& sys) {
  const cni::Env& env = args.env;
  const BandwidthConfig cfg = parse_config(args.conf);
  if (!args.conf.prev_result) {
    throw Error(cni::kErrInvalidConfig,
                "invalid config: must be called as a chained plugin "
                "(no prevResult)");
  }
  if (cfg.is_zero()) return;
  const cni::Netns pod = cni::open_pod_netns(env.netns);
  cni::NlSocket host_sock;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const Plan plan = make_plan(cfg, env, args.conf.name, host_sock, pod_sock, sys);
  cni::NlSocket& sock = plan.placement == Placement::kHostVeth ? host_sock : pod_sock;

  if (plan.transmit) check_tbf(sock, plan.dev, *plan.transmit, plan.dev.mtu, plan.where);
  if (plan.vf) {
    // Reading a VF's rate back needs RTEXT_FILTER_VF dumps (the sriov plugin's VF verbs).
    args.log.info("not checking the rate of VF " + std::to_string(plan.vf->vf_index) + " of " +
                  in_quotes(plan.vf->pf_netdev));
  }
  if (!plan.receive) return;
  auto ifb = cni::find_link(sock, plan.ifb_name);
  if (!ifb || ifb->kind != "ifb") {
    check_failed("ifb " + in_quotes(plan.ifb_name) + " not found in the " + plan.where);
  }
  if (!ifb->up) check_failed("ifb " + in_quotes(plan.ifb_name) + " is down");
  check_tbf(sock, *ifb, *plan.receive, plan.dev.mtu, plan.where);
  check_redirect(sock, plan.dev, *ifb, plan.where);
  bool listed = false;
  for (const auto& i : args.conf.prev_result->interfaces) listed = listed || i.name == ifb->name;
  if (!listed) check_failed("prevResult does not list ifb " + in_quotes(ifb->name));
}

void cmd_status(const cni::CmdArgs& args) { parse_config(args.conf); }

void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid) {
  // No list at all is not an empty list: nothing is known to be stale (SPEC §GC).
  if (!valid) return;
  std::set<std::pair<std::string, std::string>> keep;
  for (const auto& a : *valid) keep.insert({a.container_id, a.ifname});
  cni::NlSocket host;
  for (const auto& link : cni::list_links(host)) {
    if (link.kind != "ifb") continue;
    auto owner = parse_alias(link.alias);
    if (!owner || owner->network != args.conf.name) continue;
    if (keep.count({owner->container_id, owner->ifname})) continue;
    args.log.info("GC: deleting ifb " + in_quotes(link.name) + " of container " +
                  in_quotes(owner->container_id) + " (" + owner->ifname + ")");
    collect_ifb(host, link, args.log);
  }
}

cni::Plugin plugin() {
  cni::Plugin p;
  p.name = "bandwidth";
  p.about = "Strait bandwidth CNI plugin (spec 0.3.0 - 1.1.0)";
  p.add = [sys = System{}](const cni::CmdArgs& a) { return cmd_add(a, sys); };
  p.del = [sys = System{}](const cni::CmdArgs& a) { cmd_del(a, sys); };
  p.check = [sys = System{}](const cni::CmdArgs& a) { cmd_check(a, sys); };
  p.status = cmd_status;
  p.parse = [](const cni::CmdArgs& a) { parse_config(a.conf); };
  p.gc = cmd_gc;
  return p;
}

}  // namespace bandwidth
