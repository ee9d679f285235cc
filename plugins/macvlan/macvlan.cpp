#include "plugins/macvlan/macvlan.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/core/mac.h"
#include "libcni/core/rollback.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/route.h"
#include "libcni/kernel/sysctl.h"
#include "libcni/process/ipam_exec.h"
#include "plugins/macvlan/macvlan_config.h"

namespace macvlan {

namespace {

using cni::Error;

// Upstream waits this long for IPv6 DAD when the result has an IPv6 gateway
// (pkg/ipam ConfigureIface -> ip.SettleAddresses).
constexpr std::chrono::milliseconds kSettleTimeout{10000};
constexpr std::chrono::milliseconds kSettlePoll{50};

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// A name no host or pod device has: the kernel checks a new device's name in the netns the
// request comes from before moving it, so creating it as CNI_IFNAME could collide with a
// host device of that name (upstream macvlan.go, "due to kernel bug").
// It is "mv" + 8 hex digits of a hash (FNV-1a) of the attachment (container ID, ifname)
// rather than random: a plugin killed between creating the device and renaming it leaves it
// under this name in the pod netns, and DEL (or a retried ADD) of the same attachment finds
// and deletes it (found by test/integration/fault_injection_test.cpp). The runtime never
// runs two operations on one attachment at once (SPEC), so the name is never in use by a
// live ADD when DEL looks for it.
std::string temp_link_name(const cni::Env& env) {
  uint32_t h = 2166136261u;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 16777619u;
    }
  };
  mix(env.container_id);
  mix(std::string_view("\0", 1));
  mix(env.ifname);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "mv";
  for (int i = 0; i < 8; ++i, h >>= 4) name += kHex[h & 0xf];
  return name;
}

// Deletes the macvlan a killed ADD of this attachment left under its temporary name.
void delete_leftover_temp_link(cni::NlSocket& pod_sock, const cni::Env& env, cni::Logger& log) {
  const std::string tmp_name = temp_link_name(env);
  auto leftover = cni::find_link(pod_sock, tmp_name);
  if (!leftover || leftover->kind != "macvlan") return;
  log.info("deleting " + tmp_name + " in netns " + quoted(env.netns) +
           ", left by an ADD that did not finish");
  cni::delete_link_if_exists(pod_sock, leftover->index);
}

// ADD and CHECK need the pod netns; failing to open it is a bad CNI_NETNS.
cni::Netns open_pod_netns(const std::string& path) {
  try {
    return cni::Netns::open(path);
  } catch (const std::system_error& e) {
    throw Error(cni::kErrInvalidEnv, std::string("CNI_NETNS is invalid: ") + e.what());
  }
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

// Sysctls upstream sets and ignores failures of: ndisc_notify is missing when the kernel
// has no IPv6.
void write_sysctl_best_effort(const std::string& name, const std::string& value, cni::Logger& log) {
  try {
    cni::write_sysctl(name, value);
  } catch (const std::exception& e) {
    log.info(e.what());
  }
}

// IPv6 addresses need disable_ipv6=0 on the device and on lo (upstream ConfigureIface).
void enable_ipv6(const std::string& ifname, cni::Logger& log) {
  const std::string key = "net/ipv6/conf/" + ifname + "/disable_ipv6";
  std::string value;
  try {
    value = cni::read_sysctl(key);
  } catch (const std::exception& e) {
    log.warning(e.what());
    return;
  }
  if (value != "0") cni::write_sysctl(key, "0");
}

// Waits until no IPv6 address of `ifindex` is tentative (DAD done), reading
// /proc/thread-self/net/if_inet6 of the current (pod) netns: libcni's address verbs do not
// report IFA_F_* flags. A failed DAD is an error (someone else has the address); a timeout is
// only logged, as upstream ignores it.
void settle_ipv6(int ifindex, const std::string& ifname, cni::Logger& log) {
  constexpr unsigned kTentative = 0x40;  // IFA_F_TENTATIVE
  constexpr unsigned kDadFailed = 0x08;  // IFA_F_DADFAILED
  const auto deadline = std::chrono::steady_clock::now() + kSettleTimeout;
  while (true) {
    std::ifstream in("/proc/thread-self/net/if_inet6");
    if (!in) {
      log.warning("cannot read /proc/thread-self/net/if_inet6; not waiting for IPv6 DAD");
      return;
    }
    bool tentative = false;
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string addr, name;
      unsigned index = 0, prefix = 0, scope = 0, flags = 0;
      fields >> addr >> std::hex >> index >> prefix >> scope >> flags >> name;
      if (!fields || static_cast<int>(index) != ifindex) continue;
      if (flags & kDadFailed) {
        std::string text;
        for (size_t i = 0; i < addr.size(); i += 4) {
          if (i > 0) text += ':';
          text += addr.substr(i, 4);
        }
        throw Error(cni::kErrInternal, "IPv6 address " + text + " on " + quoted(ifname) +
                                           " failed duplicate address detection: another "
                                           "host on the link uses it");
      }
      if (flags & kTentative) tentative = true;
    }
    if (!tentative) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      log.warning("interface " + quoted(ifname) + " still has tentative IPv6 addresses after " +
                  std::to_string(kSettleTimeout.count() / 1000) + " s");
      return;
    }
    std::this_thread::sleep_for(kSettlePoll);
  }
}

// Addresses and routes of the IPAM result on the new interface, as upstream's
// ipam.ConfigureIface, announced by the kernel. Runs inside the pod netns (NetnsGuard): the
// sysctls and /proc/thread-self follow the thread's netns; `sock` is bound to the pod netns
// anyway.
void configure_l3(cni::NlSocket& sock, const cni::LinkInfo& link, const cni::Result& result,
                  cni::Logger& log) {
  const std::string& ifname = link.name;
  // Neighbours learn the new MAC when the address moves (a pod restarted elsewhere).
  write_sysctl_best_effort("net/ipv4/conf/" + ifname + "/arp_notify", "1", log);
  write_sysctl_best_effort("net/ipv6/conf/" + ifname + "/ndisc_notify", "1", log);

  bool has_v6 = false;
  for (const auto& ip : result.ips) has_v6 = has_v6 || ip.address.ip.is_v6();
  if (has_v6) {
    enable_ipv6("lo", log);
    enable_ipv6(ifname, log);
  }

  std::optional<cni::IpAddress> gw4, gw6;
  for (const auto& ip : result.ips) {
    cni::add_address(sock, link, ip.address);
    if (!ip.gateway) continue;
    auto& gw = ip.gateway->is_v4() ? gw4 : gw6;
    if (!gw) gw = ip.gateway;
  }
  // Up only once the addresses are there: with arp_notify the kernel then announces them
  // (gratuitous ARP on NETDEV_UP) and with ndisc_notify it sends an unsolicited NA when DAD
  // completes. Announcing from user space would need an AF_PACKET socket, whose close waits
  // for an RCU grace period: 8-16 ms of every ADD (docs/benchmarks.md).
  cni::set_link_up(sock, link.index);
  if (gw6) settle_ipv6(link.index, ifname, log);

  for (const auto& route : result.routes) {
    cni::RouteSpec spec = cni::route_spec_from(route, link.index);
    // A route without a gateway goes via the interface's gateway of its family.
    if (!spec.gw) spec.gw = route.dst.ip.is_v4() ? gw4 : gw6;
    cni::add_route(sock, spec);
  }
}

// The prevResult interface this attachment made: name == CNI_IFNAME, sandbox == CNI_NETNS.
std::optional<size_t> find_prev_interface(const cni::Result& prev, const cni::Env& env) {
  for (size_t i = 0; i < prev.interfaces.size(); ++i) {
    const auto& iface = prev.interfaces[i];
    if (iface.name == env.ifname && iface.sandbox == env.netns) return i;
  }
  return std::nullopt;
}

std::string normalized_mac(const std::string& text) {
  auto mac = cni::MacAddress::try_parse(text);
  return mac ? mac->str() : text;
}

[[noreturn]] void check_failed(const std::string& msg) {
  // Upstream's CHECK errors are plain Go errors, which skel reports as 999.
  throw Error(cni::kErrInternal, "CHECK failed: " + msg);
}

cni::LinkInfo check_interface(cni::NlSocket& pod_sock, const MacvlanConfig& cfg,
                              const cni::Interface& prev_iface, const cni::Env& env) {
  auto link = cni::find_link(pod_sock, env.ifname);
  if (!link) {
    check_failed("interface " + quoted(env.ifname) + " not found in netns " + quoted(env.netns));
  }
  if (link->kind != "macvlan") {
    check_failed("interface " + quoted(env.ifname) + " is " +
                 (link->kind.empty() ? std::string("not a virtual device") : "a " + link->kind) +
                 ", not a macvlan");
  }
  if (link->macvlan_mode != cfg.mode) {
    const std::string have =
        link->macvlan_mode ? std::string(cni::to_string(*link->macvlan_mode)) : "unknown";
    check_failed("interface " + quoted(env.ifname) + " has macvlan mode " + have +
                 ", the config says " + std::string(cni::to_string(cfg.mode)));
  }
  if (!prev_iface.mac.empty() && normalized_mac(prev_iface.mac) != link->mac) {
    check_failed("interface " + quoted(env.ifname) + " has MAC " + link->mac +
                 ", prevResult says " + prev_iface.mac);
  }
  return *link;
}

void check_addresses(cni::NlSocket& pod_sock, const cni::LinkInfo& link, const cni::Result& prev,
                     size_t iface_index) {
  const std::vector<cni::IpNet> have = cni::list_addresses(pod_sock, link.index);
  for (const auto& ip : prev.ips) {
    if (!ip.interface || static_cast<size_t>(*ip.interface) != iface_index) continue;
    bool found = false;
    for (const auto& a : have) found = found || a == ip.address;
    if (!found) {
      check_failed("address " + ip.address.str() + " of prevResult is not on interface " +
                   quoted(link.name));
    }
  }
}

// Every prevResult route must be in the pod's routing table: same destination and table,
// and the same gateway when the route names one. Later plugins may have changed the device
// or metric, which CHECK tolerates (SPEC: CHECK "must tolerate later plugins").
void check_routes(cni::NlSocket& pod_sock, const cni::Result& prev, const std::string& netns) {
  for (const auto& route : prev.routes) {
    const int family = route.dst.ip.is_v4() ? AF_INET : AF_INET6;
    cni::RouteFilter filter;
    filter.table = route.table ? static_cast<uint32_t>(*route.table) : cni::kMainTable;
    bool found = false;
    for (const auto& r : cni::list_routes(pod_sock, family, filter)) {
      if (r.dst.network() != route.dst.network()) continue;
      if (route.gw && r.gw != route.gw) continue;
      found = true;
      break;
    }
    if (!found) {
      std::string text = route.dst.network().str();
      if (route.gw) text += " via " + route.gw->str();
      check_failed("route " + text + " of prevResult is not in the routing table of netns " +
                   quoted(netns));
    }
  }
}

}  // namespace

cni::Result cmd_add(const cni::CmdArgs& args) {
  const cni::Env& env = args.env;
  const MacvlanConfig cfg = parse_config(args.conf, env.args);

  // Everything that can be checked without changing anything comes first.
  const cni::Netns pod = open_pod_netns(env.netns);
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
  std::optional<cni::EarlyIpamAdd> ipam_add;  // outlives the rollback that waits for it
  cni::Rollback rollback(args.log);
  if (!cfg.l2_only) {
    // SPEC (delegated plugins): a delegate that failed ADD gets a DEL too, so the undo is
    // registered before the call. A store-only IPAM (host-local, global-ipam) runs while the
    // link is being created; others after it exists.
    rollback.add("release the address (IPAM " + quoted(cfg.ipam_type) + " DEL)",
                 [&args, &ipam_add] {
                   ipam_add->wait();
                   cni::ipam_del(args);
                 });
    ipam_add.emplace(args);
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
    cni::Result ipam = ipam_add->result();
    if (ipam.ips.empty()) {
      throw Error(cni::kErrInternal,
                  "IPAM plugin " + quoted(cfg.ipam_type) + " returned no IP addresses");
    }
    result.ips = ipam.ips;
    // containerd finds the pod IP only through ips[].interface -> {CNI_IFNAME, sandbox}.
    for (auto& ip : result.ips) ip.interface = 0;
    result.routes = ipam.routes;
    result.dns = ipam.dns;

    cni::NetnsGuard in_pod(pod);
    configure_l3(pod_sock, link, result, args.log);
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
    args.log.warning(
        "not deleting " + quoted(env.ifname) + " in netns " + quoted(env.netns) + ": it is " +
        (link->kind.empty() ? "not a virtual device" : "a " + link->kind) + ", not a macvlan");
    return;
  }
  if (args.conf.prev_result) {
    if (auto i = find_prev_interface(*args.conf.prev_result, env)) {
      const std::string& mac = args.conf.prev_result->interfaces[*i].mac;
      if (!mac.empty() && normalized_mac(mac) != link->mac) {
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
  const cni::Netns pod = open_pod_netns(env.netns);

  if (!cfg.l2_only) cni::ipam_check(args);

  auto iface_index = find_prev_interface(prev, env);
  if (!iface_index) {
    check_failed("prevResult has no interface " + quoted(env.ifname) + " with sandbox " +
                 quoted(env.netns));
  }

  cni::NlSocket host_sock;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const cni::LinkInfo master = resolve_master(cfg.link_in_container ? pod_sock : host_sock, cfg,
                                              netns_label(cfg.link_in_container, env.netns));
  check_mtu(cfg, master);

  const cni::LinkInfo link = check_interface(pod_sock, cfg, prev.interfaces[*iface_index], env);
  check_addresses(pod_sock, link, prev, *iface_index);
  check_routes(pod_sock, prev, env.netns);
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
  p.gc = cmd_gc;
  return p;
}

}  // namespace macvlan
