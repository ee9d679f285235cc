#include "libcni/iface/check.h"

#include <sys/socket.h>

#include <vector>

#include "libcni/core/error.h"
#include "libcni/core/mac.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/route.h"

namespace cni {

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

std::optional<size_t> find_prev_interface(const Result& prev, const Env& env) {
  for (size_t i = 0; i < prev.interfaces.size(); ++i) {
    const auto& iface = prev.interfaces[i];
    if (iface.name == env.ifname && iface.sandbox == env.netns) return i;
  }
  return std::nullopt;
}

bool same_mac(const std::string& result_mac, const std::string& kernel_mac) {
  auto mac = MacAddress::try_parse(result_mac);
  return (mac ? mac->str() : result_mac) == kernel_mac;
}

std::string describe_kind(const LinkInfo& link) {
  return link.kind.empty() ? std::string("not a virtual device") : "a " + link.kind;
}

void check_failed(const std::string& msg) {
  // Upstream's CHECK errors are plain Go errors, which skel reports as 999.
  throw Error(kErrInternal, "CHECK failed: " + msg);
}

LinkInfo check_link(NlSocket& sock, const Env& env, std::string_view kind) {
  auto link = find_link(sock, env.ifname);
  if (!link) {
    check_failed("interface " + quoted(env.ifname) + " not found in netns " + quoted(env.netns));
  }
  if (link->kind != kind) {
    check_failed("interface " + quoted(env.ifname) + " is " + describe_kind(*link) + ", not a " +
                 std::string(kind));
  }
  return *link;
}

void check_mac(const LinkInfo& link, const Interface& prev_iface) {
  if (!prev_iface.mac.empty() && !same_mac(prev_iface.mac, link.mac)) {
    check_failed("interface " + quoted(link.name) + " has MAC " + link.mac + ", prevResult says " +
                 prev_iface.mac);
  }
}

void check_addresses(NlSocket& sock, const LinkInfo& link, const Result& prev, size_t iface_index) {
  const std::vector<IpNet> have = list_addresses(sock, link.index);
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

void check_routes(NlSocket& sock, const Result& prev, const std::string& netns) {
  for (const auto& route : prev.routes) {
    const int family = route.dst.ip.is_v4() ? AF_INET : AF_INET6;
    RouteFilter filter;
    filter.table = route.table ? static_cast<uint32_t>(*route.table) : kMainTable;
    bool found = false;
    for (const auto& r : list_routes(sock, family, filter)) {
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

}  // namespace cni
