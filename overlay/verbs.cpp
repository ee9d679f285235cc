#include "overlay/verbs.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <system_error>

#include "ipam/address_request.h"
#include "ipam/global/pool_selection.h"
#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"
#include "libcni/core/rollback.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netns.h"
#include "libcni/process/ipam_exec.h"
#include "overlay/node_guard.h"
#include "overlay/node_side.h"

namespace overlay {

namespace {

using cni::Error;

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// OS faults of the file store are the spec's I/O error.
template <class Fn>
auto store_io(const std::string& kind, Fn fn) {
  try {
    return fn();
  } catch (const std::system_error& e) {
    if (dynamic_cast<const cni::NetlinkError*>(&e)) throw;
    throw Error(cni::kErrIo, kind + ": store: " + e.what());
  }
}

std::chrono::milliseconds store_timeout(const OverlayConfig& cfg) {
  return std::chrono::milliseconds(cfg.ipam.store.timeout_ms);
}

PodSideSpec pod_side(const OverlayPlugin& p, int mtu) {
  PodSideSpec s = p.pod_side;
  s.mtu = mtu;
  return s;
}

}  // namespace

cni::Result cmd_add(const OverlayPlugin& p, const cni::CmdArgs& args) {
  const cni::Env& env = args.env;
  const auto parsed = p.parse(args.conf, args.environ);
  const OverlayConfig& cfg = parsed->overlay();
  // The addresses and pools asked for are global-ipam's to check, but a malformed one (or a
  // pool this pod may not have) must fail before this ADD makes node state (the device, the
  // store's first files), not after.
  ipam::parse_address_requests(args.conf, env);
  const auto families = ipam::select_pools(cfg.ipam.pools, cfg.ipam.node_name,
                                           ipam::parse_pool_request(args.conf, env));
  const cni::Netns pod = cni::open_pod_netns(env.netns);
  cni::NlSocket host;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const Underlay underlay = resolve_underlay(host, cfg, p.overhead);
  if (cni::find_link(pod_sock, env.ifname)) {
    throw Error(cni::kErrInvalidEnv, "CNI_IFNAME: interface " + in_quotes(env.ifname) +
                                         " already exists in netns " + in_quotes(env.netns));
  }
  const auto tunnel = parsed->tunnel(underlay);
  tunnel->require_support(host);

  return store_io(p.kind, [&] {
    cni::EarlyIpamAdd ipam_add(args);  // outlives both rollbacks, which wait for it
    auto release = [&args, &ipam_add] {
      ipam_add.wait();
      cni::ipam_del(args);
    };
    const std::string release_what =
        "release the address (IPAM " + in_quotes(cni::ipam_type(args.conf)) + " DEL)";
    // On a node whose device exists (every ADD but a node's first), the IPAM ADD, the longest
    // part of an ADD, starts now and runs beside the node checks and the veth work. On a
    // fresh node it starts once the node side is made, so the tunnel address is the first of
    // the node's first block. Its release is undone last: after the node state's undo.
    const bool steady = cni::find_link(host, tunnel->device()).has_value();
    cni::Rollback early_rollback(args.log);
    if (steady) {
      early_rollback.add(release_what, release);
      ipam_add.start();
    }

    auto store = ipam::open_global_store(cfg.ipam.store);
    NodeSide side(cfg, underlay, *tunnel, *store, args.log);
    NodeGuard guard =
        NodeGuard::enter(cfg.ipam.node_lock_dir, tunnel->device(), store_timeout(cfg));
    if (!guard.why_not().empty()) args.log.warning("no node lock: " + guard.why_not());

    Writes writes;
    NodeState state;
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
      NodeGuard::Setup lock = guard.setup(store_timeout(cfg));
      state = side.ensure(host, writes);
    }
    if (!steady) {
      rollback.add(release_what, release);
      ipam_add.start();
    }

    const PodSideSpec spec = pod_side(p, underlay.tunnel_mtu);
    PodVeth veth = create_pod_veth(args, spec, cfg.network, pod, host, pod_sock, rollback);
    const auto has = [&families](int family) {
      return std::any_of(families.begin(), families.end(),
                         [family](const auto& f) { return f.family == family; });
    };
    prepare_pod_side(host, pod_sock, veth, has(AF_INET), has(AF_INET6));
    const cni::Result ipam = ipam_add.result();
    if (ipam.ips.empty()) {
      throw Error(cni::kErrInternal, "IPAM plugin global-ipam returned no IP addresses");
    }
    std::vector<cni::IpNet> pools;
    for (const auto& pool : cfg.ipam.pools) pools.push_back(pool.layout.pool());
    cni::Result result = configure_pod_side(args, pod, host, pod_sock, veth, ipam, pools);
    if (!args.conf.dns.empty()) result.dns = args.conf.dns;

    std::vector<cni::IpAddress> ips;
    for (const auto& ip : result.ips) ips.push_back(ip.address.ip);
    const auto added = side.add_blackholes(host, side.blocks_of(ips), writes);
    state.blackholes_added.insert(state.blackholes_added.end(), added.begin(), added.end());

    rollback.commit();
    early_rollback.commit();
    return result;
  });
}

void cmd_del(const OverlayPlugin& p, const cni::CmdArgs& args) {
  // Only what DEL needs: the network name (the host veth's name) and the IPAM. DEL must work
  // when other keys changed since ADD, the underlay is gone or the kernel lost the tunnel.
  const bool has_ipam = args.conf.ipam.is_object();
  auto link_deleted = std::async(
      std::launch::async, [&p, &args] { delete_pod_side(args, p.pod_side, args.conf.name); });
  if (has_ipam) cni::ipam_del(args);
  link_deleted.get();
}

void cmd_check(const OverlayPlugin& p, const cni::CmdArgs& args) {
  const auto parsed = p.parse(args.conf, args.environ);
  const OverlayConfig& cfg = parsed->overlay();
  if (!args.conf.prev_result) {
    throw Error(cni::kErrInvalidConfig, "invalid config: required prevResult missing");
  }
  const cni::Netns pod = cni::open_pod_netns(args.env.netns);
  cni::ipam_check(args);
  cni::NlSocket host;
  const Underlay underlay = resolve_underlay(host, cfg, p.overhead);
  store_io(p.kind, [&] {
    auto store = ipam::open_global_store(cfg.ipam.store);
    const auto tunnel = parsed->tunnel(underlay);
    NodeSide(cfg, underlay, *tunnel, *store, args.log).check(host);
  });
  check_pod_side(args, pod_side(p, underlay.tunnel_mtu), cfg.network, pod);
}

void cmd_status(const OverlayPlugin& p, const cni::CmdArgs& args) {
  const auto parsed = p.parse(args.conf, args.environ);
  const std::string cannot = p.kind + " cannot add pods: ";
  cni::NlSocket host;
  Underlay underlay;
  try {
    underlay = resolve_underlay(host, parsed->overlay(), p.overhead);
  } catch (const Error& e) {
    throw Error(cni::kErrNotAvailable, cannot + e.msg());
  }
  const auto tunnel = parsed->tunnel(underlay);
  try {
    tunnel->require_support(host);
  } catch (const Error& e) {
    throw Error(cni::kErrNotAvailable, cannot + e.msg());
  }
  if (auto link = cni::find_link(host, tunnel->device())) {
    if (link->kind != tunnel->kind()) {
      throw Error(cni::kErrNotAvailable, cannot + in_quotes(tunnel->device()) +
                                             " exists and is not a " + tunnel->kind() + " device");
    }
    try {
      tunnel->check_device(host);
    } catch (const Error& e) {
      // The next ADD repairs it; until then pods on it may not reach other nodes.
      throw Error(cni::kErrNotAvailableLimited, p.kind + ": " + e.msg());
    }
  }
  cni::ipam_status(args);
}

void cmd_gc(const OverlayPlugin& p, const cni::CmdArgs& args,
            const std::optional<std::vector<cni::Attachment>>& valid) {
  if (args.conf.ipam.is_object()) cni::ipam_gc(args);
  if (!valid) return;  // SPEC (GC): no key says nothing about what is valid
  cni::NlSocket host;
  collect_pod_sides(host, p.pod_side, args.conf.name, *valid, args.log);
}

cni::Plugin make_plugin(const OverlayPlugin& p) {
  cni::Plugin out;
  out.name = p.kind;
  out.about = p.about;
  out.cni_args = {"IP"};  // for global-ipam
  out.add = [&p](const cni::CmdArgs& a) { return cmd_add(p, a); };
  out.del = [&p](const cni::CmdArgs& a) { cmd_del(p, a); };
  out.check = [&p](const cni::CmdArgs& a) { cmd_check(p, a); };
  out.status = [&p](const cni::CmdArgs& a) { cmd_status(p, a); };
  out.parse = [&p](const cni::CmdArgs& a) { p.parse(a.conf, a.environ); };
  out.gc = [&p](const cni::CmdArgs& a, const std::optional<std::vector<cni::Attachment>>& v) {
    cmd_gc(p, a, v);
  };
  return out;
}

SyncPlugin make_sync_plugin(const OverlayPlugin& p, std::string description) {
  return {p.kind, std::move(description), [&p](const cni::NetConf& conf, const cni::EnvMap& env) {
            std::shared_ptr<const PluginConfig> parsed = p.parse(conf, env);
            TunnelFactory make = [parsed](const Underlay& u) { return parsed->tunnel(u); };
            return SyncSetup{std::shared_ptr<const OverlayConfig>(parsed, &parsed->overlay()),
                             p.overhead, std::move(make)};
          }};
}

}  // namespace overlay
