#include "overlay/pod_side.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/core/hash.h"
#include "libcni/iface/check.h"
#include "libcni/iface/configure.h"
#include "libcni/iface/temp_link.h"
#include "libcni/kernel/neigh.h"
#include "libcni/kernel/route.h"
#include "libcni/kernel/sysctl.h"

namespace overlay {

namespace {

constexpr size_t kMaxIfnameLen = 15;

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

bool has_family(const cni::Result& r, int family) {
  return std::any_of(r.ips.begin(), r.ips.end(),
                     [&](const cni::IpConfig& ip) { return ip.address.ip.family() == family; });
}

}  // namespace

cni::IpAddress pod_gateway(int family) {
  return cni::IpAddress::parse(family == AF_INET ? kGatewayV4 : kGatewayV6);
}

std::string host_veth_name(std::string_view prefix, const std::string& network,
                           const cni::Env& env) {
  return cni::hashed_name(prefix, {network, env.container_id, env.ifname},
                          static_cast<int>(kMaxIfnameLen - prefix.size()));
}

std::string host_veth_alias(const std::string& network, const cni::Env& env) {
  return network + "/" + env.container_id + "/" + env.ifname;
}

PodVeth create_pod_veth(const cni::CmdArgs& args, const PodSideSpec& spec,
                        const std::string& network, const cni::Netns& pod, cni::NlSocket& host,
                        cni::NlSocket& pod_sock, cni::Rollback& rollback) {
  const cni::Env& env = args.env;
  const std::string host_name = host_veth_name(spec.host_prefix, network, env);
  // The pod end is made in the pod netns under CNI_IFNAME itself (cmd_add found that name
  // free there): one request, no temporary name and no rename, which would cost two more
  // round trips and the kernel's re-registration of the device's sysctl and sysfs entries.
  // A name taken meanwhile fails the creation itself (EEXIST), with nothing made.
  cni::VethSpec veth;
  veth.name = env.ifname;
  veth.netns_fd = pod.fd();
  veth.peer_name = host_name;
  veth.mtu = spec.mtu;
  const auto made = [&] {
    try {
      cni::create_veth(host, veth);
      return true;
    } catch (const cni::NetlinkError& e) {
      if (e.sys_errno() != EEXIST) throw;
      return false;
    }
  };
  bool direct = made();
  if (!direct) {
    if (cni::find_link(pod_sock, env.ifname)) {
      throw cni::Error(cni::kErrInvalidEnv, "CNI_IFNAME: interface " + in_quotes(env.ifname) +
                                                " already exists in netns " + in_quotes(env.netns));
    }
    // What an ADD of this attachment killed midway left (looked for only now, so the usual
    // ADD spends no request on it): the runtime never runs two operations on one attachment
    // at once (SPEC), so these names are nobody else's. Deleting the host end takes its pod
    // end with it.
    if (cni::delete_leftover_link(host, host_name, "veth", "the host netns", args.log)) {
      direct = made();
    }
  }
  std::string tmp_name;
  if (!direct) {
    // Kernels that look the new device's name up in the netns that asks (the host's) rather
    // than in the one it goes to (Debian 12's 6.1 does) refuse CNI_IFNAME when the host has a
    // link of that name, its own eth0 say: the pod end is then made under a temporary name
    // and renamed in the pod netns.
    tmp_name = cni::temp_link_name(spec.temp_prefix, env);
    cni::delete_leftover_link(pod_sock, tmp_name, "veth", "netns " + in_quotes(env.netns),
                              args.log);
    veth.name = tmp_name;
    cni::create_veth(host, veth);
  }
  // Deleting the host end deletes the pod end.
  rollback.add("delete veth " + in_quotes(host_name),
               [&host, host_name] { cni::delete_link_if_exists(host, host_name); });

  PodVeth out;
  out.host = cni::get_link(host, host_name);
  cni::set_link_alias(host, out.host.index, host_veth_alias(network, env));
  if (!direct) {
    const int pod_index = cni::get_link(pod_sock, tmp_name).index;
    cni::rename_link(pod_sock, pod_index, env.ifname);
    out.pod = cni::get_link(pod_sock, pod_index);
  } else {
    out.pod = cni::get_link(pod_sock, env.ifname);
  }
  return out;
}

void prepare_pod_side(cni::NlSocket& host, cni::NlSocket& pod_sock, PodVeth& veth, bool v4,
                      bool v6) {
  const std::string& h = veth.host.name;
  // The host end answers for the pod's gateway: proxy ARP and, for IPv6, proxy NDP for
  // fe80::1 (with its own link-local address usable at once: accept_dad 0 before it goes
  // up), both without the random delay of up to 0.8 s (proxy_delay, in jiffies) the kernel
  // adds to proxied answers by default. Forwarding is the node's (NodeSide), and only these
  // devices get anything. The device is new: its values are the defaults, so each is
  // written without reading it first.
  if (v4 && !veth.v4_ready) {
    cni::write_sysctl("net/ipv4/conf/" + h + "/proxy_arp", "1");
    cni::write_sysctl("net/ipv4/neigh/" + h + "/proxy_delay", "0");
    veth.v4_ready = true;
  }
  if (v6 && !veth.v6_ready) {
    if (veth.host.up) {
      // A family the pools did not predict: the link-local address may be tentative.
      cni::set_link_down(host, veth.host.index);
      veth.host.up = false;
    }
    cni::write_sysctl("net/ipv6/conf/" + h + "/disable_ipv6", "0");
    cni::write_sysctl("net/ipv6/conf/" + h + "/accept_dad", "0");
    cni::write_sysctl("net/ipv6/conf/" + h + "/proxy_ndp", "1");
    cni::write_sysctl("net/ipv6/neigh/" + h + "/proxy_delay", "0");
    veth.v6_ready = true;
  }
  if (!veth.host.up) {
    cni::set_link_up(host, veth.host.index);
    veth.host.up = true;
  }
  // An IPv4-only pod's end goes up now too, off the path that waits for the IPAM; a pod with
  // IPv6 waits for configure_interface, which turns its DAD off while it is still down.
  if (v6 && veth.pod.up) {
    cni::set_link_down(pod_sock, veth.pod.index);
    veth.pod.up = false;
  } else if (!v6 && !veth.pod.up && !veth.v6_ready) {
    cni::set_link_up(pod_sock, veth.pod.index);
    veth.pod.up = true;
  }
  if (!veth.pod_routes_read) {
    for (const auto& r : cni::list_routes(pod_sock, AF_UNSPEC)) {
      if (r.dst.prefix != 0) continue;
      (r.dst.ip.family() == AF_INET ? veth.pod_default_v4 : veth.pod_default_v6) = true;
    }
    veth.pod_routes_read = true;
  }
}

cni::Result configure_pod_side(const cni::CmdArgs& args, const cni::Netns& pod, cni::NlSocket& host,
                               cni::NlSocket& pod_sock, PodVeth& veth, const cni::Result& ipam,
                               const std::vector<cni::IpNet>& pools) {
  const cni::Env& env = args.env;
  const bool v4 = has_family(ipam, AF_INET);
  const bool v6 = has_family(ipam, AF_INET6);
  const std::string& h = veth.host.name;
  // What prepare_pod_side did not do yet (a family the pools did not predict); else nothing.
  prepare_pod_side(host, pod_sock, veth, v4, v6);

  cni::Result result;
  cni::Interface host_iface;
  host_iface.name = h;
  host_iface.mac = veth.host.mac;
  result.interfaces.push_back(host_iface);
  cni::Interface pod_iface;
  pod_iface.name = env.ifname;
  pod_iface.mac = veth.pod.mac;
  pod_iface.mtu = veth.pod.mtu;
  pod_iface.sandbox = env.netns;
  result.interfaces.push_back(pod_iface);

  for (const auto& ip : ipam.ips) {
    cni::IpConfig c;
    c.address = cni::IpNet{ip.address.ip, ip.address.ip.bits()};
    c.gateway = pod_gateway(ip.address.ip.family());
    // containerd finds the pod IP only through ips[].interface -> {CNI_IFNAME, sandbox}.
    c.interface = 1;
    result.ips.push_back(c);
  }
  // The IPAM's routes of each family the pod has, via the link-local gateway; a default
  // route when it gives none for a family, or, when the pod has a default route of that
  // family already (this is a second network, as multus attaches them), a route to each of
  // the overlay's pools.
  for (int family : {AF_INET, AF_INET6}) {
    if (!has_family(ipam, family)) continue;
    const bool has_default = family == AF_INET ? veth.pod_default_v4 : veth.pod_default_v6;
    bool any = false;
    for (const auto& r : ipam.routes) {
      if (r.dst.ip.family() != family) continue;
      cni::Route route = r;
      route.gw = pod_gateway(family);
      result.routes.push_back(route);
      any = true;
    }
    if (!any && has_default) {
      for (const auto& pool : pools) {
        if (pool.ip.family() != family) continue;
        cni::Route route;
        route.dst = pool;
        route.gw = pod_gateway(family);
        result.routes.push_back(route);
      }
    } else if (!any) {
      cni::Route route;
      route.dst = cni::IpNet::parse(family == AF_INET ? "0.0.0.0/0" : "::/0");
      route.gw = pod_gateway(family);
      result.routes.push_back(route);
    }
  }
  result.dns = ipam.dns;

  cni::ConfigureOptions options;
  options.announce = false;  // the only neighbour is the host end, which routes to us anyway
  options.host_addresses = true;
  options.address.nodad = true;
  options.route_via_interface_gateway = false;
  options.onlink = true;
  options.dad = false;
  options.already_up = veth.pod.up;
  cni::configure_interface(pod, pod_sock, veth.pod, result, 1, args.log, options);

  // The node's routes to the pod, and the proxy entry that answers the pod's NS for fe80::1.
  for (const auto& ip : result.ips) {
    cni::RouteSpec r;
    r.dst = ip.address;
    r.ifindex = veth.host.index;
    r.scope = cni::RouteScope::kLink;
    cni::replace_route(host, r);
  }
  if (v6) {
    cni::NeighSpec proxy;
    proxy.ifindex = veth.host.index;
    proxy.dst = pod_gateway(AF_INET6);
    proxy.proxy = true;
    cni::replace_neighbour(host, proxy);
  }
  return result;
}

void delete_pod_side(const cni::CmdArgs& args, const PodSideSpec& spec,
                     const std::string& network) {
  const cni::Env& env = args.env;
  cni::NlSocket host;
  const std::string host_name = host_veth_name(spec.host_prefix, network, env);
  if (auto link = cni::find_link(host, host_name)) {
    if (link->kind == "veth") {
      cni::delete_link_if_exists(host, link->index);
    } else {
      args.log.warning("not deleting " + in_quotes(host_name) + " in the host netns: it is " +
                       cni::describe_kind(*link) + ", not a veth");
    }
  }
  // Nothing to do in the pod netns: the pod end, whatever its name (a temporary one when a
  // killed ADD had not renamed it yet), went with its peer, and a vanished netns is success
  // (kubernetes #43014).
}

void check_pod_side(const cni::CmdArgs& args, const PodSideSpec& spec, const std::string& network,
                    const cni::Netns& pod) {
  const cni::Env& env = args.env;
  const cni::Result& prev = *args.conf.prev_result;
  auto iface_index = cni::find_prev_interface(prev, env);
  if (!iface_index) {
    cni::check_failed("prevResult has no interface " + in_quotes(env.ifname) + " with sandbox " +
                      in_quotes(env.netns));
  }
  cni::NlSocket host;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  const cni::LinkInfo link = cni::check_link(pod_sock, env, "veth");
  cni::check_mac(link, prev.interfaces[*iface_index]);
  if (spec.mtu > 0 && link.mtu != spec.mtu) {
    cni::check_failed("interface " + in_quotes(env.ifname) + " has MTU " +
                      std::to_string(link.mtu) + ", the tunnel's is " + std::to_string(spec.mtu));
  }
  const std::string host_name = host_veth_name(spec.host_prefix, network, env);
  auto host_link = cni::find_link(host, host_name);
  if (!host_link || host_link->kind != "veth") {
    cni::check_failed("host veth " + in_quotes(host_name) + " of interface " +
                      in_quotes(env.ifname) + " not found in the host netns");
  }
  if (host_link->link_index != link.index) {
    cni::check_failed("host veth " + in_quotes(host_name) + " is not the peer of " +
                      in_quotes(env.ifname));
  }
  if (!host_link->up) cni::check_failed("host veth " + in_quotes(host_name) + " is down");
  cni::check_addresses(pod_sock, link, prev, *iface_index);
  cni::check_routes(pod_sock, prev, env.netns);

  const auto host_routes = cni::list_routes(host, AF_UNSPEC, {});
  for (const auto& ip : prev.ips) {
    if (!ip.interface || static_cast<size_t>(*ip.interface) != *iface_index) continue;
    const cni::IpNet dst{ip.address.ip, ip.address.ip.bits()};
    const bool routed = std::any_of(host_routes.begin(), host_routes.end(), [&](const auto& r) {
      return r.dst == dst && r.ifindex == host_link->index;
    });
    if (!routed) {
      cni::check_failed("the host has no route " + dst.str() + " dev " + in_quotes(host_name));
    }
    const std::string key = ip.address.ip.is_v4() ? "net/ipv4/conf/" + host_name + "/proxy_arp"
                                                  : "net/ipv6/conf/" + host_name + "/proxy_ndp";
    if (cni::read_sysctl(key) != "1") cni::check_failed(key + " is not 1");
  }
}

std::vector<std::string> collect_pod_sides(cni::NlSocket& host, const PodSideSpec& spec,
                                           const std::string& network,
                                           const std::vector<cni::Attachment>& valid,
                                           cni::Logger& log) {
  std::vector<std::string> deleted;
  const std::string prefix = network + "/";
  for (const auto& link : cni::list_links(host)) {
    if (link.kind != "veth" || link.name.rfind(spec.host_prefix, 0) != 0) continue;
    if (link.alias.rfind(prefix, 0) != 0) continue;
    const std::string rest = link.alias.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos) continue;
    const cni::Attachment a{rest.substr(0, slash), rest.substr(slash + 1)};
    if (std::find(valid.begin(), valid.end(), a) != valid.end()) continue;
    log.info("gc: deleting host veth " + in_quotes(link.name) + " of " + link.alias);
    if (cni::delete_link_if_exists(host, link.index)) deleted.push_back(link.name);
  }
  return deleted;
}

}  // namespace overlay
