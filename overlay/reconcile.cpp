#include "overlay/reconcile.h"

#include <sys/socket.h>

#include <map>
#include <unordered_map>

#include "overlay/node_record.h"
#include "overlay/route_protocol.h"

namespace overlay {

namespace {

// Routes are compared by destination (family, network, prefix): one route of ours each.
struct Key {
  cni::IpNet dst;
  bool operator<(const Key& o) const {
    if (auto c = dst.ip <=> o.dst.ip; c != 0) return c < 0;
    return dst.prefix < o.dst.prefix;
  }
};

// What a route of ours must agree on; the metric and the scope follow from these.
bool same(const cni::RouteSpec& have, const cni::RouteSpec& want) {
  if (have.type != want.type) return false;
  if (want.type == cni::RouteType::kBlackhole) return true;  // IPv6 reports dev lo
  return have.gw == want.gw && have.ifindex == want.ifindex && have.onlink == want.onlink;
}

std::string describe(const cni::RouteSpec& r, const std::string& dev, int dev_index) {
  return r.str(r.ifindex == dev_index ? dev : "");
}

}  // namespace

ReconcileReport reconcile(cni::NlSocket& sock, Tunnel& tunnel, int device_index,
                          const std::string& self, const Cluster& cluster, cni::Logger& log) {
  ReconcileReport report;
  Writes& w = report.writes;

  // Remote nodes the tunnel can reach.
  std::unordered_map<std::string, OverlayNode> peers;
  std::vector<OverlayNode> peer_list;
  for (const auto& rec : cluster.nodes) {
    if (rec.name == self) continue;
    OverlayNode n = from_record(rec, tunnel.device());
    std::string why;
    if (!tunnel.reachable(n, &why)) {
      report.unreachable.push_back(rec.name + ": " + why);
      continue;
    }
    peers.emplace(rec.name, n);
    peer_list.push_back(std::move(n));
  }
  report.peers = peer_list.size();

  std::map<Key, cni::RouteSpec> desired;
  auto want = [&](cni::RouteSpec r) {
    r.table = cni::kMainTable;
    r.protocol = kRouteProtocol;
    r.dst = r.dst.network();
    desired[Key{r.dst}] = std::move(r);
  };
  auto to_node = [&](const std::string& node, const cni::IpNet& dst) {
    auto it = peers.find(node);
    if (it == peers.end()) return;
    if (auto r = tunnel.route_to(it->second, dst, device_index)) want(*r);
  };
  for (const auto& b : cluster.blocks) {
    if (b.affinity == self) {
      cni::RouteSpec r;
      r.dst = b.cidr;
      r.type = cni::RouteType::kBlackhole;
      want(r);
    } else if (!b.affinity.empty()) {
      to_node(b.affinity, b.cidr);
    }
    for (const auto& [ordinal, a] : b.allocations) {
      if (!b.borrowed(a) || a.node == self || a.node.empty()) continue;
      const cni::IpAddress ip = b.address(ordinal);
      to_node(a.node, cni::IpNet{ip, ip.bits()});
    }
  }
  report.routes = desired.size();

  // The per-node objects first, so no route through a peer exists before its neighbour.
  tunnel.add_peers(sock, device_index, peer_list, w, log);

  cni::RouteFilter filter;
  filter.table = cni::kMainTable;
  std::map<Key, cni::RouteSpec> ours;
  for (auto& r : cni::list_routes(sock, AF_UNSPEC, filter)) {
    if (r.protocol != kRouteProtocol) continue;
    ours.emplace(Key{r.dst.network()}, std::move(r));
  }
  const std::string& dev = tunnel.device();
  for (const auto& [key, have] : ours) {
    if (desired.count(key)) continue;
    cni::RouteSpec del = have;
    cni::delete_route_if_exists(sock, del);
    ++w.routes_deleted;
    log.info("removed route " + describe(have, dev, device_index));
  }
  for (const auto& [key, r] : desired) {
    auto it = ours.find(key);
    if (it != ours.end() && same(it->second, r)) continue;
    cni::replace_route(sock, r);
    if (it == ours.end()) {
      ++w.routes_added;
      log.info("added route " + describe(r, dev, device_index));
    } else {
      ++w.routes_replaced;
      log.info("replaced route " + describe(it->second, dev, device_index) + " by " +
               describe(r, dev, device_index));
    }
  }

  // Last, what only routes that are now gone went through.
  tunnel.remove_stale_peers(sock, device_index, w, log);
  return report;
}

}  // namespace overlay
