#include "overlay/node_side.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "ipam/global/block_allocator.h"
#include "ipam/global/nodes.h"
#include "libcni/core/error.h"
#include "libcni/iface/check.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/route.h"
#include "libcni/kernel/sysctl.h"
#include "overlay/route_protocol.h"

namespace overlay {

namespace {

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

bool has_family(const std::vector<ipam::PoolConfig>& pools, const std::string& node, int family) {
  return std::any_of(pools.begin(), pools.end(), [&](const ipam::PoolConfig& p) {
    return p.family() == family && p.selects(node);
  });
}

ipam::AllocatorOptions allocator_options(const OverlayConfig& cfg) {
  ipam::AllocatorOptions o;
  o.node = cfg.ipam.node_name;
  o.strict_affinity = cfg.ipam.strict_affinity;
  o.max_blocks_per_node = cfg.ipam.max_blocks_per_node;
  return o;
}

cni::RouteSpec blackhole(const cni::IpNet& block) {
  cni::RouteSpec r;
  r.dst = block;
  r.type = cni::RouteType::kBlackhole;
  r.protocol = kRouteProtocol;
  return r;
}

}  // namespace

ipam::records::Handle tunnel_handle(const std::string& kind, const std::string& node,
                                    const std::string& device) {
  return ipam::records::Handle{kind + "-tunnel-addr", node, device};
}

NodeSide::NodeSide(const OverlayConfig& cfg, const Underlay& underlay, Tunnel& tunnel,
                   ipam::KvStore& store, cni::Logger& log)
    : cfg_(cfg), underlay_(underlay), tunnel_(tunnel), store_(store), log_(log) {}

void NodeSide::ensure_forwarding(Writes& writes) {
  // The node routes between pods, the tunnel and the underlay. IPv6 forwarding also turns
  // off accepting router advertisements on every device (accept_ra 1): a node that learns
  // its IPv6 default route by RA needs accept_ra 2 on its uplink, as with Calico.
  auto ensure = [&](const std::string& key) {
    if (cni::read_sysctl(key) != "1") {
      cni::write_sysctl(key, "1");
      ++writes.node;
      log_.info("set " + key + " to 1");
    }
  };
  const std::string& node = cfg_.ipam.node_name;
  if (has_family(cfg_.ipam.pools, node, AF_INET)) ensure("net/ipv4/ip_forward");
  if (has_family(cfg_.ipam.pools, node, AF_INET6)) ensure("net/ipv6/conf/all/forwarding");
}

std::vector<cni::IpAddress> NodeSide::tunnel_addresses(const OverlayNode& stored,
                                                       NodeState& state) {
  const std::string& node = cfg_.ipam.node_name;
  std::vector<cni::IpAddress> want;
  bool complete = true;
  for (int family : {AF_INET, AF_INET6}) {
    if (!has_family(cfg_.ipam.pools, node, family)) continue;
    if (auto ip = stored.tunnel(family)) {
      want.push_back(*ip);
    } else {
      complete = false;
    }
  }
  if (complete) return want;
  // Missing from the record: ask the allocator, which returns what the handle already holds
  // (a record lost or an earlier ADD killed before writing it) or allocates.
  ipam::BlockAllocator alloc(cfg_.ipam.pools, store_, allocator_options(cfg_));
  const auto got = alloc.assign(tunnel_handle(tunnel_.kind(), node, tunnel_.device()), {});
  want.clear();
  for (const auto& a : got) {
    want.push_back(a.ip);
    if (!a.reused) state.allocated_tunnel = true;
    log_.info(std::string(a.reused ? "found" : "allocated") + " tunnel address " + a.ip.str() +
              " of block " + a.block.str() + " for " + in_quotes(tunnel_.device()) + " of node " +
              node);
  }
  return want;
}

NodeState NodeSide::ensure(cni::NlSocket& sock, Writes& writes,
                           const std::optional<ipam::records::NodeRecord>* stored) {
  NodeState state;
  const std::string& node = cfg_.ipam.node_name;
  ensure_forwarding(writes);
  state.device = tunnel_.ensure_device(sock, writes, &state.created_device, log_);

  std::optional<ipam::records::NodeRecord> read;
  if (!stored) {
    read = ipam::nodes::get(store_, node);
    stored = &read;
  }
  const OverlayNode before =
      *stored ? from_record(**stored, tunnel_.device()) : OverlayNode{node, {}, {}, {}, {}};

  OverlayNode self;
  self.name = node;
  self.underlay = underlay_.local;
  self.attributes = tunnel_.node_attributes();
  if (tunnel_.needs_tunnel_addresses()) {
    const auto addrs = tunnel_addresses(before, state);
    const auto have = cni::list_addresses(sock, state.device.index);
    for (const auto& ip : addrs) {
      (ip.is_v4() ? self.tunnel_v4 : self.tunnel_v6) = ip;
      const cni::IpNet net{ip, ip.bits()};
      if (std::find(have.begin(), have.end(), net) != have.end()) continue;
      cni::AddressOptions o;
      o.nodad = true;  // allocated to this node alone
      o.noprefixroute = true;
      cni::add_address(sock, state.device.index, net, o);
      ++writes.node;
    }
  }
  state.self = self;

  // The record: written when it differs from what is stored (the allocator may have created a
  // bare one while claiming the tunnel address's block).
  std::optional<ipam::records::NodeRecord> current = *stored;
  if (state.allocated_tunnel) current = ipam::nodes::get(store_, node);
  const bool missing = !current;
  if (missing || from_record(*current, tunnel_.device()) != self) {
    ipam::nodes::put(store_, to_record(self, tunnel_.device()));
    state.created_record = !*stored;
    log_.info("published node " + node + " (" + underlay_.local.str() + ") for " +
              in_quotes(tunnel_.device()));
  }
  return state;
}

void NodeSide::undo(cni::NlSocket& sock, const NodeState& state) {
  for (const auto& b : state.blackholes_added) cni::delete_route_if_exists(sock, blackhole(b));
  if (state.created_record) ipam::nodes::remove(store_, cfg_.ipam.node_name);
  if (state.allocated_tunnel) {
    ipam::BlockAllocator alloc(cfg_.ipam.pools, store_, allocator_options(cfg_));
    alloc.release(tunnel_handle(tunnel_.kind(), cfg_.ipam.node_name, tunnel_.device()));
    // A device this ADD did not make (ipip's tunl0, which the module owns) stays: the
    // released addresses must not, or a pod could get one the device still holds.
    if (!state.created_device) {
      const auto have = cni::list_addresses(sock, state.device.index);
      for (const auto& ip : {state.self.tunnel_v4, state.self.tunnel_v6}) {
        if (!ip) continue;
        const cni::IpNet net{*ip, ip->bits()};
        if (std::find(have.begin(), have.end(), net) != have.end()) {
          cni::delete_address(sock, state.device.index, net);
        }
      }
    }
  }
  if (state.created_device) cni::delete_link_if_exists(sock, tunnel_.device());
}

std::vector<cni::IpNet> NodeSide::blocks_of(const std::vector<cni::IpAddress>& ips) const {
  std::vector<cni::IpNet> out;
  for (const auto& ip : ips) {
    for (const auto& p : cfg_.ipam.pools) {
      if (!p.cidr().contains(ip)) continue;
      const cni::IpNet b = p.layout.block_of(ip);
      if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
    }
  }
  return out;
}

std::vector<cni::IpNet> NodeSide::add_blackholes(cni::NlSocket& sock,
                                                 const std::vector<cni::IpNet>& blocks,
                                                 Writes& writes) {
  std::vector<cni::IpNet> added;
  for (const auto& b : blocks) {
    try {
      cni::add_route(sock, blackhole(b));
      ++writes.routes_added;
      added.push_back(b);
    } catch (const cni::NetlinkError& e) {
      if (e.sys_errno() != EEXIST) throw;
    }
  }
  return added;
}

void NodeSide::check(cni::NlSocket& sock) {
  tunnel_.check_device(sock);
  const std::string& node = cfg_.ipam.node_name;
  auto rec = ipam::nodes::get(store_, node);
  if (!rec) cni::check_failed("node " + node + " has no record in " + store_.describe());
  const OverlayNode self = from_record(*rec, tunnel_.device());
  if (self.underlay != underlay_.local) {
    cni::check_failed("the record of node " + node + " says underlay address " +
                      (self.underlay ? self.underlay->str() : std::string("none")) +
                      ", this node's is " + underlay_.local.str());
  }
  if (!tunnel_.needs_tunnel_addresses()) return;
  const cni::LinkInfo dev = cni::get_link(sock, tunnel_.device());
  const auto have = cni::list_addresses(sock, dev.index);
  for (const auto& ip : {self.tunnel_v4, self.tunnel_v6}) {
    if (!ip) continue;
    if (std::find(have.begin(), have.end(), cni::IpNet{*ip, ip->bits()}) == have.end()) {
      cni::check_failed("tunnel address " + ip->str() + " of node " + node + " is not on " +
                        in_quotes(tunnel_.device()));
    }
  }
}

}  // namespace overlay
