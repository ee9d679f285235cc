#include "plugins/macvlan/macvlan.h"

#include <sys/socket.h>

#include <cerrno>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/core/rollback.h"
#include "libcni/iface/check.h"
#include "libcni/iface/configure.h"
#include "libcni/iface/temp_link.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/process/ipam_exec.h"
#include "plugins/macvlan/macvlan_config.h"

namespace macvlan {

namespace {

using cni::Error;

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The macvlan is created under this name and renamed in the pod netns (libcni/iface/temp_link.h).
constexpr std::string_view kTempPrefix = "mv";

std::string temp_link_name(const cni::Env& env) { return cni::temp_link_name(kTempPrefix, env); }

// Deletes the macvlan a killed ADD of this attachment left under its temporary name.
void delete_leftover_temp_link(cni::NlSocket& pod_sock, const cni::Env& env, cni::Logger& log) {
  cni::delete_leftover_link(pod_sock, temp_link_name(env), "macvlan", "netns " + quoted(env.netns),
                            log);
}

std::string netns_label(bool in_pod, const std::string& pod_path) {
  return in_pod ? "pod netns " + quoted(pod_path) : std::string("host netns");
}

// The master device: `master`, or the device of the default route (IPv4 first, as
// upstream takes the first default route of its dump), in the host netns or, with
// linkInContainer, in the pod netns.
cni::LinkInfo resolve_master(cni::NlSocket& sock, const MacvlanConfig& cfg,
                             const std::string& where) {
  if (cfg.master.empty()) {
    auto link = cni::default_route_link(sock, AF_INET);
    if (!link) link = cni::default_route_link(sock, AF_INET6);
    if (!link) {
      throw Error(cni::kErrInvalidConfig, "invalid config: \"master\" is not set and the " + where +
                                              " has no default route to take the master from");
    }
    return *link;
  }
  auto link = cni::find_link(sock, cfg.master);
  if (!link) {
    throw Error(cni::kErrInvalidConfig, "invalid config: \"master\": link " + quoted(cfg.master) +
                                            " not found in the " + where);
  }
  return *link;
}

void check_mtu(const MacvlanConfig& cfg, const cni::LinkInfo& master) {
  // Upstream: "invalid MTU %d, must be [0, master MTU(%d)]" (plugins #393).
  if (cfg.mtu > master.mtu) {
    throw Error(cni::kErrInvalidConfig, "invalid config: \"mtu\": " + std::to_string(cfg.mtu) +
                                            " is larger than the MTU of master " +
                                            quoted(master.name) + " (" +
                                            std::to_string(master.mtu) + "); it must be in [0, " +
                                            std::to_string(master.mtu) + "]");
  }
}

// The device of this attachment: a macvlan in the config's mode with prevResult's MAC.
cni::LinkInfo check_interface(cni::NlSocket& pod_sock, const MacvlanConfig& cfg,
                              const cni::Interface& prev_iface, const cni::Env& env) {
  const cni::LinkInfo link = cni::check_link(pod_sock, env, "macvlan");
  if (link.macvlan_mode != cfg.mode) {
    const std::string have =
        link.macvlan_mode ? std::string(cni::to_string(*link.macvlan_mode)) : "unknown";
    cni::check_failed("interface " + quoted(env.ifname) + " has macvlan mode " + have +
                      ", the config says " + std::string(cni::to_string(cfg.mode)));
  }
  cni::check_mac(link, prev_iface);
  return link;
}

}  // namespace

cni::Result cmd_add(const cni::CmdArgs& args) {
  const cni::Env& env = args.env;
  const MacvlanConfig cfg = parse_config(args.conf, env.args);

  // Everything that can be checked without changing anything comes first.
  const cni::Netns pod = cni::open_pod_netns(env.netns);
  cni::NlSocket host_sock;  // the netns the runtime runs us in
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  cni::NlSocket& master_sock = cfg.link_in_container ? pod_sock : host_sock;
  const cni::LinkInfo master =
      resolve_master(master_sock, cfg, netns_label(cfg.link_in_container, env.netns));
  check_mtu(cfg, master);
  if (cni::find_link(pod_sock, env.ifname)) {
    throw Error(cni::kErrInvalidEnv, "CNI_IFNAME: interface " + quoted(env.ifname) +
                                         " already exists in netns " + quoted(env.netns));
  }

  delete_leftover_temp_link(pod_sock, env, args.log);

  // From here on every side effect registers its undo at once.
  const std::string tmp_name = temp_link_name(env);
  int link_index = 0;
  cni::EarlyIpamAdd ipam_add(args);  // outlives the rollback that waits for it
  cni::Rollback rollback(args.log);
  if (!cfg.l2_only) {
    // SPEC (delegated plugins): a delegate that failed ADD gets a DEL too, so the undo is
    // registered before the call. A store-only IPAM (host-local, global-ipam) runs while the
    // link is being created; others after it exists. The undo may run with no ADD started
    // (start() found no thread): the DEL is then a harmless no-op.
    rollback.add("release the address (IPAM " + quoted(cfg.ipam_type) + " DEL)",
                 [&args, &ipam_add] {
                   ipam_add.wait();
                   cni::ipam_del(args);
                 });
    ipam_add.start();
  }

  cni::MacvlanSpec spec;
  spec.name = tmp_name;
  spec.master_index = master.index;
  spec.mode = cfg.mode;
  spec.mtu = cfg.mtu;
  spec.mac = cfg.mac;
  spec.bcqueuelen = cfg.bcqueuelen;
  // Created in the master's netns and moved into the pod's in the same request.
  if (!cfg.link_in_container) spec.netns_fd = pod.fd();
  try {
    cni::create_macvlan(master_sock, spec);
  } catch (const cni::NetlinkError& e) {
    throw cni::NetlinkError("failed to create macvlan " + quoted(env.ifname) + " on master " +
                                quoted(master.name) + " (mode " +
                                std::string(cni::to_string(cfg.mode)) + ")",
                            e.nl_error(), e.sys_errno(), e.kernel_message());
  }
  rollback.add("delete macvlan " + quoted(env.ifname) + " in netns " + quoted(env.netns),
               [&pod_sock, &link_index, &tmp_name] {
                 if (link_index > 0) {
                   cni::delete_link_if_exists(pod_sock, link_index);
                 } else {
                   cni::delete_link_if_exists(pod_sock, tmp_name);
                 }
               });
  link_index = cni::get_link(pod_sock, tmp_name).index;
  cni::rename_link(pod_sock, link_index, env.ifname);
  const cni::LinkInfo link = cni::get_link(pod_sock, link_index);

  cni::Result result;
  cni::Interface iface;
  iface.name = env.ifname;
  iface.mac = link.mac;
  iface.mtu = link.mtu;
  iface.sandbox = env.netns;
  result.interfaces.push_back(iface);

  if (cfg.l2_only) {
    cni::set_link_up(pod_sock, link_index);
  } else {
    cni::add_ipam_result(result, ipam_add.result(), cfg.ipam_type, 0);

    cni::configure_interface(pod, pod_sock, link, result, 0, args.log);
  }
  // Upstream puts the config's dns into the result; IPAM's (host-local resolvConf) stays
  // when the config has none.
  if (!args.conf.dns.empty()) result.dns = args.conf.dns;

  rollback.commit();
  return result;
}

namespace {

// DEL's kernel half: the attachment's macvlan, if the netns and the link still exist.
void delete_attachment_link(const cni::CmdArgs& args) {
  const cni::Env& env = args.env;

  std::optional<cni::Netns> pod;
  try {
    pod = cni::Netns::try_open(env.netns);
  } catch (const std::system_error& e) {
    // A leftover file where a netns was bind-mounted: the namespace, and the link with it,
    // are gone.
    if (e.code().value() != EINVAL) throw;
    args.log.info(std::string(e.what()) + "; nothing to delete");
    return;
  }
  if (!pod) return;  // kubernetes #43014: a vanished netns is success

  cni::NlSocket sock = cni::NlSocket::in(*pod);
  delete_leftover_temp_link(sock, env, args.log);
  auto link = cni::find_link(sock, env.ifname);
  if (!link) return;
  // Only our own device: after an ADD that failed because CNI_IFNAME was taken, the
  // runtime still sends DEL, and the device of that name belongs to someone else.
  if (link->kind != "macvlan") {
    args.log.warning("not deleting " + quoted(env.ifname) + " in netns " + quoted(env.netns) +
                     ": it is " + cni::describe_kind(*link) + ", not a macvlan");
    return;
  }
  if (args.conf.prev_result) {
    if (auto i = cni::find_prev_interface(*args.conf.prev_result, env)) {
      const std::string& mac = args.conf.prev_result->interfaces[*i].mac;
      if (!mac.empty() && !cni::same_mac(mac, link->mac)) {
        args.log.warning("not deleting " + quoted(env.ifname) + " in netns " + quoted(env.netns) +
                         ": its MAC " + link->mac + " is not the one of prevResult (" + mac + ")");
        return;
      }
    }
  }
  cni::delete_link_if_exists(sock, link->index);
}

}  // namespace

void cmd_del(const cni::CmdArgs& args) {
  // Only the IPAM block matters: DEL must work even if the master is gone or other keys
  // changed since ADD.
  const IpamChoice ipam = parse_ipam_choice(args.conf);
  // The lease is released whatever happens to the link, even when the netns is gone (cni
  // #1167). The kernel deletes a link only after an RCU grace period (about 16 ms here), so
  // the IPAM DEL exec runs meanwhile rather than before it (docs/benchmarks.md).
  std::future<void> link_deleted;
  if (!args.env.netns.empty()) {
    link_deleted = std::async(std::launch::async, [&args] { delete_attachment_link(args); });
  }
  if (!ipam.l2_only) cni::ipam_del(args);
  if (link_deleted.valid()) link_deleted.get();
}

void cmd_check(const cni::CmdArgs& args) {
  const cni::Env& env = args.env;
  const MacvlanConfig cfg = parse_config(args.conf, env.args);
  if (!args.conf.prev_result) {
    throw Error(cni::kErrInvalidConfig, "invalid config: required prevResult missing");
  }
  const cni::Result& prev = *args.conf.prev_result;
  const cni::Netns pod = cni::open_pod_netns(env.netns);

  if (!cfg.l2_only) cni::ipam_check(args);

  auto iface_index = cni::find_prev_interface(prev, env);
  if (!iface_index) {
    cni::check_failed("prevResult has no interface " + quoted(env.ifname) + " with sandbox " +
                      quoted(env.netns));
  }

  cni::NlSocket host_sock;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const cni::LinkInfo master = resolve_master(cfg.link_in_container ? pod_sock : host_sock, cfg,
                                              netns_label(cfg.link_in_container, env.netns));
  check_mtu(cfg, master);

  const cni::LinkInfo link = check_interface(pod_sock, cfg, prev.interfaces[*iface_index], env);
  cni::check_addresses(pod_sock, link, prev, *iface_index);
  cni::check_routes(pod_sock, prev, env.netns);
}

void cmd_status(const cni::CmdArgs& args) {
  const MacvlanConfig cfg = parse_config(args.conf, args.env.args);
  // The pod netns is unknown here, so only a host-side master can be looked at.
  if (!cfg.link_in_container) {
    cni::NlSocket sock;
    try {
      resolve_master(sock, cfg, "host netns");
    } catch (const Error& e) {
      throw Error(cni::kErrNotAvailable, "macvlan cannot add interfaces: " + e.msg());
    }
  }
  if (!cfg.l2_only) cni::ipam_status(args);
}

void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>&) {
  // The links die with their pod namespaces; only IPAM holds state to collect. The valid
  // attachments travel in stdin, which the delegate gets unchanged.
  const IpamChoice ipam = parse_ipam_choice(args.conf);
  if (!ipam.l2_only) cni::ipam_gc(args);
}

cni::Plugin plugin() {
  cni::Plugin p;
  p.name = "macvlan";
  p.about = "Strait macvlan CNI plugin (spec 0.3.0 - 1.1.0)";
  // MAC= chooses the address; IP= is for the IPAM delegate (host-local).
  p.cni_args = {"MAC", "IP"};
  p.add = cmd_add;
  p.del = cmd_del;
  p.check = cmd_check;
  p.status = cmd_status;
  p.parse = [](const cni::CmdArgs& a) { parse_config(a.conf, a.env.args); };
  p.gc = cmd_gc;
  return p;
}

}  // namespace macvlan
