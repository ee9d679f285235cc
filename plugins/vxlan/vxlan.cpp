#include "plugins/vxlan/vxlan.h"

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <system_error>

#include "ipam/address_request.h"
#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"
#include "libcni/core/rollback.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/process/ipam_exec.h"
#include "overlay/config.h"
#include "overlay/node_guard.h"
#include "overlay/node_side.h"
#include "plugins/vxlan/vxlan_config.h"
#include "plugins/vxlan/vxlan_tunnel.h"

namespace vxlan {

namespace {

using cni::Error;

constexpr char kHostPrefix[] = "vx";
constexpr char kTempPrefix[] = "vxp";

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

cni::Netns open_pod_netns(const std::string& path) {
  try {
    return cni::Netns::open(path);
  } catch (const std::system_error& e) {
    throw Error(cni::kErrInvalidEnv, std::string("CNI_NETNS is invalid: ") + e.what());
  }
}

// OS faults of the file store are the spec's I/O error.
template <class Fn>
auto store_io(Fn fn) {
  try {
    return fn();
  } catch (const std::system_error& e) {
    if (dynamic_cast<const cni::NetlinkError*>(&e)) throw;
    throw Error(cni::kErrIo, std::string("vxlan: store: ") + e.what());
  }
}

std::chrono::milliseconds store_timeout(const VxlanConfig& cfg) {
  return std::chrono::milliseconds(cfg.overlay.ipam.store.timeout_ms);
}

}  // namespace

overlay::PodSideSpec pod_side_spec(int mtu) { return {kHostPrefix, kTempPrefix, mtu}; }

cni::Result cmd_add(const cni::CmdArgs& args) {
  const cni::Env& env = args.env;
  const VxlanConfig cfg = parse_config(args.conf, args.environ);
  // The addresses asked for are global-ipam's to check, but a malformed one must fail before
  // this ADD makes node state (the device, the store's first files), not after.
  ipam::parse_address_requests(args.conf, env);
  const cni::Netns pod = open_pod_netns(env.netns);
  cni::NlSocket host;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const overlay::Underlay underlay = overlay::resolve_underlay(host, cfg.overlay, kOverhead);
  if (cni::find_link(pod_sock, env.ifname)) {
    throw Error(cni::kErrInvalidEnv, "CNI_IFNAME: interface " + in_quotes(env.ifname) +
                                         " already exists in netns " + in_quotes(env.netns));
  }

  return store_io([&] {
    auto store = ipam::open_global_store(cfg.overlay.ipam.store);
    VxlanTunnel tunnel(cfg, underlay);
    overlay::NodeSide side(cfg.overlay, underlay, tunnel, *store, args.log);
    overlay::NodeGuard guard =
        overlay::NodeGuard::enter(cfg.overlay.ipam.node_lock_dir, cfg.device, store_timeout(cfg));
    if (!guard.why_not().empty()) args.log.warning("no node lock: " + guard.why_not());

    overlay::Writes writes;
    overlay::NodeState state;
    cni::EarlyIpamAdd ipam_add(args);  // outlives the rollback that waits for it
    cni::Rollback rollback(args.log);
    rollback.add("undo the node state this ADD made", [&] {
      if (!state.created_device && !state.allocated_tunnel && !state.created_record &&
          state.blackholes_added.empty()) {
        return;
      }
      if (guard.last_user()) {
        side.undo(host, state);
      } else {
        args.log.info("keeping the node state: another ADD is using it");
      }
    });
    {
      overlay::NodeGuard::Setup lock = guard.setup(store_timeout(cfg));
      state = side.ensure(host, writes);
    }

    rollback.add("release the address (IPAM " + in_quotes(cni::ipam_type(args.conf)) + " DEL)",
                 [&args, &ipam_add] {
                   ipam_add.wait();
                   cni::ipam_del(args);
                 });
    ipam_add.start();

    const overlay::PodSideSpec spec = pod_side_spec(underlay.tunnel_mtu);
    const overlay::PodVeth veth =
        overlay::create_pod_veth(args, spec, cfg.overlay.network, pod, host, pod_sock, rollback);
    const cni::Result ipam = ipam_add.result();
    if (ipam.ips.empty()) {
      throw Error(cni::kErrInternal, "IPAM plugin global-ipam returned no IP addresses");
    }
    std::vector<cni::IpNet> pools;
    for (const auto& p : cfg.overlay.ipam.pools) pools.push_back(p.layout.pool());
    cni::Result result = overlay::configure_pod_side(args, pod, host, pod_sock, veth, ipam, pools);
    if (!args.conf.dns.empty()) result.dns = args.conf.dns;

    std::vector<cni::IpAddress> ips;
    for (const auto& ip : result.ips) ips.push_back(ip.address.ip);
    const auto added = side.add_blackholes(host, side.blocks_of(ips), writes);
    state.blackholes_added.insert(state.blackholes_added.end(), added.begin(), added.end());

    rollback.commit();
    return result;
  });
}

void cmd_del(const cni::CmdArgs& args) {
  // Only what DEL needs: the network name (the host veth's name) and the IPAM. DEL must work
  // when other keys changed since ADD or the underlay is gone.
  const bool has_ipam = args.conf.ipam.is_object();
  auto link_deleted = std::async(std::launch::async, [&args] {
    overlay::delete_pod_side(args, pod_side_spec(), args.conf.name);
  });
  if (has_ipam) cni::ipam_del(args);
  link_deleted.get();
}

void cmd_check(const cni::CmdArgs& args) {
  const VxlanConfig cfg = parse_config(args.conf, args.environ);
  if (!args.conf.prev_result) {
    throw Error(cni::kErrInvalidConfig, "invalid config: required prevResult missing");
  }
  const cni::Netns pod = open_pod_netns(args.env.netns);
  cni::ipam_check(args);
  cni::NlSocket host;
  const overlay::Underlay underlay = overlay::resolve_underlay(host, cfg.overlay, kOverhead);
  store_io([&] {
    auto store = ipam::open_global_store(cfg.overlay.ipam.store);
    VxlanTunnel tunnel(cfg, underlay);
    overlay::NodeSide(cfg.overlay, underlay, tunnel, *store, args.log).check(host);
  });
  overlay::check_pod_side(args, pod_side_spec(underlay.tunnel_mtu), cfg.overlay.network, pod);
}

void cmd_status(const cni::CmdArgs& args) {
  const VxlanConfig cfg = parse_config(args.conf, args.environ);
  cni::NlSocket host;
  overlay::Underlay underlay;
  try {
    underlay = overlay::resolve_underlay(host, cfg.overlay, kOverhead);
  } catch (const Error& e) {
    throw Error(cni::kErrNotAvailable, "vxlan cannot add pods: " + e.msg());
  }
  if (auto link = cni::find_link(host, cfg.device)) {
    if (link->kind != "vxlan") {
      throw Error(cni::kErrNotAvailable, "vxlan cannot add pods: " + in_quotes(cfg.device) +
                                             " exists and is not a vxlan device");
    }
    VxlanTunnel tunnel(cfg, underlay);
    try {
      tunnel.check_device(host);
    } catch (const Error& e) {
      // The next ADD repairs it; until then pods on it may not reach other nodes.
      throw Error(cni::kErrNotAvailableLimited, "vxlan: " + e.msg());
    }
  }
  cni::ipam_status(args);
}

void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid) {
  if (args.conf.ipam.is_object()) cni::ipam_gc(args);
  if (!valid) return;  // SPEC (GC): no key says nothing about what is valid
  cni::NlSocket host;
  overlay::collect_pod_sides(host, pod_side_spec(), args.conf.name, *valid, args.log);
}

cni::Plugin plugin() {
  cni::Plugin p;
  p.name = "vxlan";
  p.about = "Strait vxlan CNI plugin (spec 0.3.0 - 1.1.0); `vxlan sync --help` for the agent";
  p.cni_args = {"IP"};  // for global-ipam
  p.add = cmd_add;
  p.del = cmd_del;
  p.check = cmd_check;
  p.status = cmd_status;
  p.parse = [](const cni::CmdArgs& a) { parse_config(a.conf, a.environ); };
  p.gc = cmd_gc;
  return p;
}

}  // namespace vxlan
