#include "plugins/vxlan/vxlan_tunnel.h"

#include <linux/neighbour.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "libcni/core/error.h"
#include "libcni/iface/check.h"

namespace vxlan {

namespace {

constexpr char kVtepMac[] = "vtepMAC";
constexpr char kVni[] = "vni";

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

std::string describe(const cni::VxlanParams& p) {
  return "vni " + std::to_string(p.vni) + " port " + std::to_string(p.port) + " local " +
         (p.local ? p.local->str() : std::string("none")) + " dev if" +
         std::to_string(p.underlay_index) + (p.learning ? " learning" : " nolearning");
}

}  // namespace

VxlanTunnel::VxlanTunnel(const VxlanConfig& cfg, const overlay::Underlay& underlay)
    : cfg_(cfg), underlay_(underlay), mac_(vtep_mac(cfg.overlay.ipam.node_name, cfg.device)) {}

cni::VxlanParams VxlanTunnel::wanted_params() const {
  cni::VxlanParams p;
  p.vni = cfg_.vni;
  p.port = cfg_.port;
  p.local = underlay_.local;
  p.underlay_index = underlay_.link.index;
  p.learning = false;
  return p;
}

std::string VxlanTunnel::fixed_difference(const cni::LinkInfo& link,
                                          const cni::VxlanParams& have) const {
  const cni::VxlanParams want = wanted_params();
  if (have != want) return "has " + describe(have) + ", the config says " + describe(want);
  if (link.mac != mac_.str())
    return "has MAC " + link.mac + ", the node's VTEP MAC is " + mac_.str();
  return "";
}

cni::LinkInfo VxlanTunnel::ensure_device(cni::NlSocket& sock, overlay::Writes& writes,
                                         bool* created, cni::Logger& log) {
  *created = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto link = cni::find_link(sock, cfg_.device);
    if (link && link->kind != "vxlan") {
      throw cni::Error(cni::kErrInvalidConfig,
                       "invalid config: \"device\": " + in_quotes(cfg_.device) +
                           " exists in the host netns and is " + cni::describe_kind(*link) +
                           ", not a vxlan");
    }
    if (link) {
      auto params = cni::find_vxlan_params(sock, link->index);
      const std::string diff = params ? fixed_difference(*link, *params) : "is unreadable";
      if (diff.empty()) {
        if (link->mtu != underlay_.tunnel_mtu) {
          log.info("setting the MTU of " + in_quotes(cfg_.device) + " to " +
                   std::to_string(underlay_.tunnel_mtu) + " (it was " + std::to_string(link->mtu) +
                   ")");
          cni::set_link_mtu(sock, link->index, underlay_.tunnel_mtu);
          ++writes.node;
        }
        if (!link->up) {
          log.info("setting " + in_quotes(cfg_.device) + " up");
          cni::set_link_up(sock, link->index);
          ++writes.node;
        }
        if (link->mtu != underlay_.tunnel_mtu || !link->up) link = cni::get_link(sock, link->index);
        return *link;
      }
      // A vxlan device's VNI, port, addresses and underlay are fixed at creation.
      log.warning("re-creating " + in_quotes(cfg_.device) + ": it " + diff);
      cni::delete_link_if_exists(sock, link->index);
      ++writes.node;
    }
    cni::VxlanSpec spec;
    spec.name = cfg_.device;
    spec.vni = cfg_.vni;
    spec.port = cfg_.port;
    spec.local = underlay_.local;
    spec.underlay_index = underlay_.link.index;
    spec.learning = false;
    spec.mtu = underlay_.tunnel_mtu;
    spec.mac = mac_;
    spec.up = true;
    try {
      cni::create_vxlan(sock, spec);
    } catch (const cni::NetlinkError& e) {
      // Another ADD or the agent made it between the lookup and now: look again.
      if (e.sys_errno() == EEXIST) continue;
      throw;
    }
    ++writes.node;
    *created = true;
    log.info("created " + in_quotes(cfg_.device) + ": " + describe(wanted_params()) + " mtu " +
             std::to_string(underlay_.tunnel_mtu) + " mac " + mac_.str());
    return cni::get_link(sock, cfg_.device);
  }
  throw cni::Error(cni::kErrTryAgainLater,
                   "vxlan device " + in_quotes(cfg_.device) + " keeps changing underneath");
}

void VxlanTunnel::check_device(cni::NlSocket& sock) {
  auto link = cni::find_link(sock, cfg_.device);
  if (!link) cni::check_failed("vxlan device " + in_quotes(cfg_.device) + " not found");
  if (link->kind != "vxlan") {
    cni::check_failed(in_quotes(cfg_.device) + " is " + cni::describe_kind(*link) +
                      ", not a vxlan");
  }
  auto params = cni::find_vxlan_params(sock, link->index);
  const std::string diff = params ? fixed_difference(*link, *params) : "is unreadable";
  if (!diff.empty()) cni::check_failed("vxlan device " + in_quotes(cfg_.device) + " " + diff);
  if (link->mtu != underlay_.tunnel_mtu) {
    cni::check_failed("vxlan device " + in_quotes(cfg_.device) + " has MTU " +
                      std::to_string(link->mtu) + ", the config says " +
                      std::to_string(underlay_.tunnel_mtu));
  }
  if (!link->up) cni::check_failed("vxlan device " + in_quotes(cfg_.device) + " is down");
}

std::map<std::string, std::string> VxlanTunnel::node_attributes() const {
  return {{kVtepMac, mac_.str()}, {kVni, std::to_string(cfg_.vni)}};
}

bool VxlanTunnel::reachable(const overlay::OverlayNode& remote, std::string* why) const {
  if (!remote.underlay) {
    *why = "no underlay address";
    return false;
  }
  auto mac = remote.attributes.find(kVtepMac);
  if (mac == remote.attributes.end() || !cni::MacAddress::try_parse(mac->second)) {
    *why = "no " + cfg_.device + "." + kVtepMac;
    return false;
  }
  if (!remote.tunnel_v4 && !remote.tunnel_v6) {
    *why = "no tunnel address";
    return false;
  }
  auto vni = remote.attributes.find(kVni);
  if (vni != remote.attributes.end() && vni->second != std::to_string(cfg_.vni)) {
    *why = "vni " + vni->second + ", ours is " + std::to_string(cfg_.vni);
    return false;
  }
  if (remote.underlay->family() != underlay_.local.family()) {
    *why = "underlay address " + remote.underlay->str() + " of the other family";
    return false;
  }
  return true;
}

std::optional<cni::RouteSpec> VxlanTunnel::route_to(const overlay::OverlayNode& remote,
                                                    const cni::IpNet& dst, int device_index) const {
  auto next_hop = remote.tunnel(dst.ip.family());
  if (!next_hop) return std::nullopt;
  cni::RouteSpec r;
  r.dst = dst;
  r.gw = next_hop;
  r.ifindex = device_index;
  r.onlink = true;  // the next hop is on no subnet of the device: its neighbour entry says where
  return r;
}

void VxlanTunnel::add_peers(cni::NlSocket& sock, int device_index,
                            const std::vector<overlay::OverlayNode>& peers, overlay::Writes& writes,
                            cni::Logger& log) {
  std::vector<cni::NeighSpec> neighbours;
  std::vector<cni::FdbSpec> fdb;
  for (const auto& p : peers) {
    const auto mac = cni::MacAddress::parse(p.attributes.at(kVtepMac));
    for (const auto& ip : {p.tunnel_v4, p.tunnel_v6}) {
      if (ip) neighbours.push_back(cni::NeighSpec{device_index, *ip, mac, false});
    }
    fdb.push_back(cni::FdbSpec{device_index, mac, *p.underlay});
  }

  // One dump for both tables: neighbours and the device's FDB.
  std::vector<cni::NeighSpec> have_neigh;
  std::vector<cni::FdbSpec> have_fdb;
  for (const auto& r : cni::dump_neighbours(sock)) {
    if (r.ifindex != device_index || !(r.state & NUD_PERMANENT) || !r.dst || !r.lladdr) continue;
    if (r.family == AF_BRIDGE) {
      if (!(r.flags & NTF_SELF) || r.lladdr->is_zero() || r.lladdr->is_multicast()) continue;
      have_fdb.push_back(cni::FdbSpec{device_index, *r.lladdr, *r.dst});
    } else if (r.family == AF_INET || r.family == AF_INET6) {
      have_neigh.push_back(cni::NeighSpec{device_index, *r.dst, r.lladdr, false});
    }
  }

  for (const auto& n : neighbours) {
    if (std::find(have_neigh.begin(), have_neigh.end(), n) != have_neigh.end()) continue;
    cni::replace_neighbour(sock, n);
    ++writes.peers;
    log.info("set neighbour " + n.dst.str() + " lladdr " + n.lladdr->str() + " dev " + cfg_.device);
  }
  for (const auto& e : fdb) {
    if (std::find(have_fdb.begin(), have_fdb.end(), e) != have_fdb.end()) continue;
    cni::replace_fdb(sock, e);
    ++writes.peers;
    log.info("set fdb " + e.mac.str() + " dst " + e.dst.str() + " dev " + cfg_.device);
  }

  stale_neighbours_.clear();
  stale_fdb_.clear();
  std::set<cni::IpAddress> wanted_ips;
  for (const auto& n : neighbours) wanted_ips.insert(n.dst);
  for (const auto& n : have_neigh) {
    if (!wanted_ips.count(n.dst)) stale_neighbours_.push_back(n);
  }
  for (const auto& e : have_fdb) {
    if (std::find(fdb.begin(), fdb.end(), e) == fdb.end()) stale_fdb_.push_back(e);
  }
}

void VxlanTunnel::remove_stale_peers(cni::NlSocket& sock, int, overlay::Writes& writes,
                                     cni::Logger& log) {
  for (const auto& n : stale_neighbours_) {
    cni::delete_neighbour_if_exists(sock, n);
    ++writes.peers;
    log.info("removed neighbour " + n.dst.str() + " dev " + cfg_.device);
  }
  for (const auto& e : stale_fdb_) {
    cni::delete_fdb_if_exists(sock, e);
    ++writes.peers;
    log.info("removed fdb " + e.mac.str() + " dst " + e.dst.str() + " dev " + cfg_.device);
  }
  stale_neighbours_.clear();
  stale_fdb_.clear();
}

}  // namespace vxlan
