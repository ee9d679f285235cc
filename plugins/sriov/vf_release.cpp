#include "plugins/sriov/vf_release.h"

#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "libcni/core/mac.h"
#include "libcni/kernel/link.h"
#include "plugins/sriov/vf_location.h"

namespace sriov {

namespace {

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// The owner's netns, if it still exists and is the one of the ADD.
std::optional<cni::Netns> open_holder_netns(const VfRecord& r) {
  if (r.netns.empty()) return std::nullopt;
  std::optional<cni::Netns> ns;
  try {
    ns = cni::Netns::try_open(r.netns);
  } catch (const std::system_error& e) {
    // A leftover file where a netns was bind-mounted: the netns is gone.
    if (e.code().value() == EINVAL) return std::nullopt;
    throw;
  }
  // A /proc/<pid>/ns/net path may name another process's netns by now.
  if (ns && r.netns_inode != 0 && ns->inode() != r.netns_inode) return std::nullopt;
  return ns;
}

// One VfSettings per setting, in set_vf's order, so that one refused does not stop the rest.
std::vector<cni::VfSettings> each_setting(const cni::VfSettings& s) {
  std::vector<cni::VfSettings> out;
  if (s.vlan) out.push_back({.vlan = s.vlan});
  if (s.mac) out.push_back({.mac = s.mac});
  if (s.rate) out.push_back({.rate = s.rate});
  if (s.spoofchk) out.push_back({.spoofchk = s.spoofchk});
  if (s.trust) out.push_back({.trust = s.trust});
  if (s.link_state) out.push_back({.link_state = s.link_state});
  return out;
}

void restore_vf_settings(ReleaseContext& ctx, const VfRecord& r) {
  if (!ctx.vfc.get(r.pf, r.vf_index)) {
    ctx.log.warning("VF " + std::to_string(r.vf_index) + " of PF " + in_quotes(r.pf) + " (" +
                    r.device_id + ") is gone: no VF settings to restore");
    return;
  }
  if (r.applied.spoofchk && !r.saved.vf.spoofchk) {
    ctx.log.warning("the driver of PF " + in_quotes(r.pf) +
                    " never reported spoofchk, so it cannot be put back");
  }
  for (const cni::VfSettings& one : each_setting(restore_settings(r))) {
    try {
      ctx.vfc.set(r.pf, r.vf_index, one);
    } catch (const std::exception& e) {
      ctx.log.warning(std::string("restoring VF settings: ") + e.what());
    }
  }
}

// The VF netdev out of the holder's netns, onto the host under the temporary name.
void take_back_from_pod(ReleaseContext& ctx, const VfRecord& r) {
  auto pod = open_holder_netns(r);
  if (!pod) return;
  cni::NlSocket sock = cni::NlSocket::in(*pod);
  std::optional<cni::LinkInfo> link = cni::find_link(sock, r.temp_name);
  if (!link && !r.ifname.empty()) link = cni::find_link(sock, r.ifname);
  if (!link) return;
  if (link->up) cni::set_link_down(sock, link->index);
  if (link->name != r.temp_name) cni::rename_link(sock, link->index, r.temp_name);
  // Under the temporary name it collides with no host device.
  cni::move_link_to_netns(sock, link->index, ctx.host_ns.fd());
  ctx.log.info("moved VF " + r.device_id + " (" + in_quotes(link->name) + ") out of netns " +
               in_quotes(r.netns));
}

// The VF netdev on the host: under the temporary name, or the name sysfs gives the VF's
// netdev (its own, or the one the kernel kept when it returned it from a netns that died).
std::optional<cni::LinkInfo> find_on_host(ReleaseContext& ctx, const VfRecord& r) {
  if (!r.temp_name.empty()) {
    if (auto l = cni::find_link(ctx.host, r.temp_name)) return l;
  }
  for (const std::string& name : ctx.sysfs.pci_netdevs(r.device_id)) {
    if (auto l = cni::find_link(ctx.host, name)) return l;
  }
  return std::nullopt;
}

bool return_netdev(ReleaseContext& ctx, const VfRecord& r) {
  take_back_from_pod(ctx, r);
  auto link = find_on_host(ctx, r);
  if (!link) {
    ctx.log.warning("the netdev of VF " + r.device_id + " (" + in_quotes(r.saved.host_name) +
                    ") is neither in netns " + in_quotes(r.netns) +
                    " nor on the host: nothing to return");
    return false;
  }
  const SavedVf& s = r.saved;
  // Down for the rename and the MAC; up again at the end if it was.
  if (link->up) cni::set_link_down(ctx.host, link->index);
  if (link->name != s.host_name) cni::rename_link(ctx.host, link->index, s.host_name);
  if (!s.mac.empty() && link->mac != s.mac) {
    cni::set_link_mac(ctx.host, link->index, cni::MacAddress::parse(s.mac));
  }
  if (s.mtu > 0 && link->mtu != s.mtu) cni::set_link_mtu(ctx.host, link->index, s.mtu);
  if (s.up) cni::set_link_up(ctx.host, link->index);
  return true;
}

}  // namespace

cni::VfSettings restore_settings(const VfRecord& r) {
  const cni::VfInfo& s = r.saved.vf;
  const cni::VfSettings& a = r.applied;
  cni::VfSettings out;
  if (a.vlan) {
    out.vlan = cni::VfVlan{s.vlan, s.qos, s.vlan_proto != 0 ? s.vlan_proto : cni::kVlanProto8021Q};
  }
  if (a.mac) out.mac = s.mac;
  if (a.rate) out.rate = cni::VfRate{s.min_tx_rate, s.max_tx_rate};
  if (a.spoofchk && s.spoofchk) out.spoofchk = s.spoofchk;
  if (a.trust) out.trust = s.trust.value_or(false);
  if (a.link_state) out.link_state = s.link_state;
  return out;
}

bool holder_alive(const VfRecord& record) { return open_holder_netns(record).has_value(); }

std::string release_vf(ReleaseContext& ctx, const VfRecord& r) {
  restore_vf_settings(ctx, r);
  const bool returned = !r.dpdk && return_netdev(ctx, r);
  ctx.state.remove_record(r.device_id);
  if (!r.container_id.empty()) {
    // Only this VF's index: the owner may hold another VF through another ifname.
    auto index = ctx.state.load_index(r.container_id, r.ifname);
    if (index && index->device_id == r.device_id) {
      ctx.state.remove_index(r.container_id, r.ifname);
    }
  }
  ctx.log.info("returned VF " + r.device_id + " (VF " + std::to_string(r.vf_index) + " of PF " +
               in_quotes(r.pf) + ") of " + r.owner());
  return returned ? r.saved.host_name : std::string();
}

}  // namespace sriov
