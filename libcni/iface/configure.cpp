#include "libcni/iface/configure.h"

#include <string>
#include <vector>

#include "libcni/kernel/route.h"
#include "libcni/kernel/sysctl.h"

namespace cni {

namespace {

// Upstream ignores failures of these: ndisc_notify is missing when the kernel has no IPv6.
void write_sysctl_best_effort(const std::string& name, const std::string& value, Logger& log) {
  try {
    write_sysctl(name, value);
  } catch (const std::exception& e) {
    log.info(e.what());
  }
}

// IPv6 addresses need disable_ipv6=0 on the device and on lo (upstream ConfigureIface): an
// unreadable key is only logged, a failed write is an error.
void enable_ipv6(const std::string& ifname, Logger& log) {
  const std::string key = "net/ipv6/conf/" + ifname + "/disable_ipv6";
  std::string value;
  try {
    value = read_sysctl(key);
  } catch (const std::exception& e) {
    log.warning(e.what());
    return;
  }
  if (value != "0") write_sysctl(key, "0");
}

}  // namespace

void configure_interface(const Netns& netns, NlSocket& sock, const LinkInfo& link,
                         const Result& result, int iface_index, Logger& log,
                         const ConfigureOptions& options) {
  const std::string& ifname = link.name;
  std::vector<IpConfig> ips;
  for (const auto& ip : result.ips) {
    if (ip.interface == iface_index) ips.push_back(ip);
  }
  bool has_v6 = false;
  for (const auto& ip : ips) has_v6 = has_v6 || ip.address.ip.is_v6();
  if (options.announce || has_v6) {
    // /proc/sys/net shows the netns of the thread that opens it.
    NetnsGuard in_netns(netns);
    if (options.announce) {
      write_sysctl_best_effort("net/ipv4/conf/" + ifname + "/arp_notify", "1", log);
      write_sysctl_best_effort("net/ipv6/conf/" + ifname + "/ndisc_notify", "1", log);
    }
    if (has_v6) {
      enable_ipv6("lo", log);
      enable_ipv6(ifname, log);
      if (!options.dad) write_sysctl("net/ipv6/conf/" + ifname + "/accept_dad", "0");
    }
  }
  if (options.mtu) set_link_mtu(sock, link.index, *options.mtu);
  if (options.mac) set_link_mac(sock, link.index, *options.mac);

  std::optional<IpAddress> gw4, gw6;
  for (const auto& ip : ips) {
    IpNet address = ip.address;
    if (options.host_addresses) address.prefix = address.ip.bits();
    add_address(sock, link, address, options.address);
    if (!ip.gateway) continue;
    auto& gw = ip.gateway->is_v4() ? gw4 : gw6;
    if (!gw) gw = ip.gateway;
  }
  // Up only once the addresses are there: with arp_notify the kernel then announces them
  // (gratuitous ARP on NETDEV_UP) and with ndisc_notify it sends an unsolicited NA when DAD
  // completes. Announcing from user space would need an AF_PACKET socket, whose close waits
  // for an RCU grace period: 8-16 ms of every ADD (docs/benchmarks.md).
  if (!options.already_up) set_link_up(sock, link.index);
  if (gw6 && options.dad) settle_ipv6_addresses(sock, link, log, options.settle_timeout);

  for (const auto& route : result.routes) {
    RouteSpec spec = route_spec_from(route, link.index);
    if (!spec.gw && options.route_via_interface_gateway) {
      spec.gw = route.dst.ip.is_v4() ? gw4 : gw6;
    }
    if (spec.gw && options.onlink) spec.onlink = true;
    add_route(sock, spec);
  }
}

}  // namespace cni
