#include "plugins/sriov/sriov.h"

#include <cerrno>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/core/mac.h"
#include "libcni/core/rollback.h"
#include "libcni/iface/check.h"
#include "libcni/iface/configure.h"
#include "libcni/iface/temp_link.h"
#include "libcni/kernel/addr.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/sysfs.h"
#include "libcni/process/ipam_exec.h"
#include "libcni/protocol/fields.h"
#include "plugins/sriov/sriov_config.h"
#include "plugins/sriov/vf_location.h"
#include "plugins/sriov/vf_record.h"
#include "plugins/sriov/vf_release.h"

namespace sriov {

namespace {

using cni::Error;

// The VF netdev's name while it moves between the host and the pod: derived from the
// attachment (libcni/iface/temp_link.h), so a DEL after a killed ADD finds it.
constexpr char kTempPrefix[] = "sv";

// sriov-cni sets the netdev MAC up to 20 times 100 ms apart: iavf and others apply a VF's MAC
// asynchronously (through the PF driver), so the first write may not stick.
constexpr int kMacAttempts = 20;
constexpr std::chrono::milliseconds kMacRetryPause{100};

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

void set_mac_retrying(cni::NlSocket& sock, int index, const cni::MacAddress& mac,
                      cni::Logger& log) {
  for (int attempt = 1;; ++attempt) {
    try {
      cni::set_link_mac(sock, index, mac);
      if (cni::get_link(sock, index).mac == mac.str()) return;
      if (attempt >= kMacAttempts) {
        throw Error(cni::kErrInternal, "the VF netdev does not take MAC " + mac.str() + " after " +
                                           std::to_string(kMacAttempts) + " attempts");
      }
    } catch (const cni::NetlinkError& e) {
      // EBUSY while the PF driver still applies the administrative MAC.
      if (attempt >= kMacAttempts) throw;
      log.debug(std::string(e.what()) + "; retrying");
    }
    std::this_thread::sleep_for(kMacRetryPause);
  }
}

// The record of the VF a DEL or GC of (container_id, ifname) acts on: through the index, or,
// when the index is gone, the record whose owner it is.
std::optional<std::string> held_device(const StateDir& st, const std::string& container_id,
                                       const std::string& ifname, cni::Logger& log) {
  if (auto index = st.load_index(container_id, ifname)) {
    if (cni::is_pci_address(index->device_id)) return index->device_id;
  }
  for (const std::string& id : st.record_addresses()) {
    try {
      auto r = st.load_record(id);
      if (r && r->owned_by(container_id, ifname)) return id;
    } catch (const std::exception& e) {
      log.warning(e.what());
    }
  }
  return std::nullopt;
}

// Compares one VF setting of CHECK.
template <class T>
void check_setting(const VfRecord& r, const char* what, const T& have, const T& want,
                   const std::string& have_text, const std::string& want_text) {
  if (have == want) return;
  cni::check_failed("VF " + std::to_string(r.vf_index) + " of PF " + in_quotes(r.pf) + " (" +
                    r.device_id + ") has " + what + " " + have_text + ", the config says " +
                    want_text);
}

std::string on_off(const std::optional<bool>& b) { return b ? (*b ? "on" : "off") : "unreported"; }

void check_vf_settings(const VfRecord& r, const cni::VfInfo& vf, const cni::VfSettings& want) {
  if (want.vlan) {
    // A driver that reports protocol 0 uses 802.1Q (the kernel's meaning of IFLA_VF_VLAN).
    const uint16_t proto = vf.vlan_proto != 0 ? vf.vlan_proto : cni::kVlanProto8021Q;
    const auto text = [](int v, int q, uint16_t p) {
      return std::to_string(v) + " qos " + std::to_string(q) + " proto " + cni::vlan_proto_name(p);
    };
    check_setting(r, "vlan", std::make_tuple(vf.vlan, vf.qos, proto),
                  std::make_tuple(want.vlan->vlan, want.vlan->qos, want.vlan->proto),
                  text(vf.vlan, vf.qos, proto),
                  text(want.vlan->vlan, want.vlan->qos, want.vlan->proto));
  }
  if (want.mac) check_setting(r, "MAC", vf.mac, *want.mac, vf.mac.str(), want.mac->str());
  if (want.rate) {
    const auto text = [](uint32_t lo, uint32_t hi) {
      return "min_tx_rate " + std::to_string(lo) + " max_tx_rate " + std::to_string(hi);
    };
    check_setting(r, "rates", std::make_pair(vf.min_tx_rate, vf.max_tx_rate),
                  std::make_pair(want.rate->min_tx_rate, want.rate->max_tx_rate),
                  text(vf.min_tx_rate, vf.max_tx_rate),
                  text(want.rate->min_tx_rate, want.rate->max_tx_rate));
  }
  if (want.spoofchk) {
    check_setting(r, "spoofchk", vf.spoofchk, want.spoofchk, on_off(vf.spoofchk),
                  on_off(want.spoofchk));
  }
  if (want.trust) {
    check_setting(r, "trust", vf.trust, want.trust, on_off(vf.trust), on_off(want.trust));
  }
  if (want.link_state) {
    check_setting(r, "link state", vf.link_state, *want.link_state,
                  std::string(cni::to_string(vf.link_state)),
                  std::string(cni::to_string(*want.link_state)));
  }
}

}  // namespace

cni::Result cmd_add(const cni::CmdArgs& args, const Deps& deps) {
  const cni::Env& env = args.env;
  cni::Logger& log = args.log;
  const SriovConfig cfg = parse_config(args.conf, env.args);

  // Everything that can be checked without changing anything comes first.
  const cni::Netns pod = cni::open_pod_netns(env.netns);
  const cni::Sysfs sysfs(cfg.sysfs_root);
  const VfLocation loc = locate_vf(sysfs, cfg.device_id, cfg.device_id_key);
  const cni::Netns host_ns = cni::Netns::current();
  cni::NlSocket host;
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  if (cni::find_link(pod_sock, env.ifname)) {
    throw Error(cni::kErrInvalidEnv, "CNI_IFNAME: interface " + in_quotes(env.ifname) +
                                         " already exists in netns " + in_quotes(env.netns));
  }

  const StateDir state(cfg.data_dir);
  const cni::FileLock lock = state.lock(cfg.device_id, deps.lock_timeout);
  const std::unique_ptr<VfControl> vfc = deps.vf_control(cfg.sysfs_root);
  ReleaseContext ctx{state, *vfc, host, host_ns, sysfs, log};

  std::string returned_name;  // the netdev's host name, when a held VF was returned first
  // The VF's record: another live pod's refuses the ADD; this attachment's own (an ADD that
  // was killed) or a stale one (its pod went away without a DEL) is released first.
  if (auto held = state.load_record(cfg.device_id)) {
    if (held->owned_by(env.container_id, env.ifname)) {
      log.info("VF " + cfg.device_id +
               " has the record of an unfinished ADD of this "
               "attachment: returning it first");
    } else if (holder_alive(*held)) {
      throw Error(cni::kErrTryAgainLater,
                  "VF " + cfg.device_id + " is in use by " + held->owner() +
                      ": that attachment has not been deleted yet (sriov-cni #219)");
    } else {
      log.info("VF " + cfg.device_id + " was held by " + held->owner() +
               ", whose netns is gone without a DEL: returning it first");
    }
    if (held->container_id.empty()) {
      state.remove_record(cfg.device_id);  // sriov-cni's: nothing saved to restore
    } else {
      // Where the netdev is now: sysfs would say so too, but a test's fake tree cannot follow
      // the rename.
      returned_name = release_vf(ctx, *held);
    }
  }

  // The VF's whole state, saved before anything changes.
  VfRecord rec;
  rec.device_id = cfg.device_id;
  rec.container_id = env.container_id;
  rec.ifname = env.ifname;
  rec.netns = env.netns;
  rec.netns_inode = pod.inode();
  rec.pf = loc.pf;
  rec.vf_index = loc.vf_index;
  rec.dpdk = loc.dpdk;
  rec.temp_name = cni::temp_link_name(kTempPrefix, env);
  rec.applied = cfg.vf_settings();
  auto vf = vfc->get(loc.pf, loc.vf_index);
  if (!vf) {
    throw Error(cni::kErrInternal, "PF " + in_quotes(loc.pf) + " reports no VF " +
                                       std::to_string(loc.vf_index) + " (" + cfg.device_id + ")");
  }
  rec.saved.vf = *vf;
  std::optional<cni::LinkInfo> netdev;
  if (!loc.dpdk) {
    const std::string name =
        returned_name.empty() ? vf_netdev(sysfs, cfg.device_id) : returned_name;
    if (name.empty()) {
      throw Error(cni::kErrInternal, "VF " + cfg.device_id + " has no netdev and its driver " +
                                         in_quotes(loc.driver) +
                                         " is no DPDK driver (vfio-pci, uio_pci_generic, igb_uio)");
    }
    netdev = cni::find_link(host, name);
    if (!netdev) {
      throw Error(cni::kErrInternal, "the netdev " + in_quotes(name) + " of VF " + cfg.device_id +
                                         " is not in the host netns");
    }
    rec.saved.host_name = netdev->name;
    rec.saved.mac = netdev->mac;
    rec.saved.mtu = netdev->mtu;
    rec.saved.up = netdev->up;
  }

  std::optional<cni::EarlyIpamAdd> ipam_add;  // outlives the rollback that waits for it
  cni::Rollback rollback(log);
  state.store_index({env.container_id, env.ifname, cfg.device_id});
  rollback.add("remove the index of this attachment",
               [&] { state.remove_index(env.container_id, env.ifname); });
  state.store_record(rec);
  rollback.add("return VF " + cfg.device_id + " as it was", [&] { release_vf(ctx, rec); });

  if (!cfg.l2_only) {
    // SPEC (delegated plugins): a delegate whose ADD failed gets a DEL too. A store-only IPAM
    // runs while the VF is being set up.
    ipam_add.emplace(args);
    rollback.add("release the address (IPAM " + in_quotes(cfg.ipam_type) + " DEL)",
                 [&args, &ipam_add] {
                   ipam_add->wait();
                   cni::ipam_del(args);
                 });
    ipam_add->start();
  }

  vfc->set(loc.pf, loc.vf_index, rec.applied);

  cni::Interface iface;
  iface.name = env.ifname;
  iface.sandbox = env.netns;
  iface.pci_id = cfg.device_id;
  std::optional<cni::LinkInfo> link;
  if (!loc.dpdk) {
    // Down (a rename needs it), the temporary name (no host or pod device has it), into the
    // pod, CNI_IFNAME there.
    const int index = netdev->index;
    if (netdev->up) cni::set_link_down(host, index);
    cni::rename_link(host, index, rec.temp_name);
    cni::move_link_to_netns(host, index, pod.fd());
    const int pod_index = cni::get_link(pod_sock, rec.temp_name).index;
    cni::rename_link(pod_sock, pod_index, env.ifname);
    if (cfg.mac.mac) set_mac_retrying(pod_sock, pod_index, *cfg.mac.mac, log);
    link = cni::get_link(pod_sock, pod_index);
    iface.mac = link->mac;
    iface.mtu = link->mtu;
  } else {
    // No netdev: the MAC the VF will use is its administrative one (sriov-cni
    // GetMacAddressForResult).
    if (cfg.mac.mac) {
      iface.mac = cfg.mac.mac->str();
    } else if (!rec.saved.vf.mac.is_zero()) {
      iface.mac = rec.saved.vf.mac.str();
    }
  }

  cni::Result result;
  result.interfaces.push_back(iface);
  if (!cfg.l2_only) {
    cni::add_ipam_result(result, ipam_add->result(), cfg.ipam_type, 0);
  }
  // The addresses (none for L2 only), up, DAD, routes; the kernel announces them (arp_notify,
  // ndisc_notify) when the link comes up. DPDK mode: the result is returned, not configured.
  if (link) cni::configure_interface(pod, pod_sock, *link, result, 0, log);
  if (!args.conf.dns.empty()) result.dns = args.conf.dns;

  rollback.commit();
  return result;
}

void cmd_del(const cni::CmdArgs& args, const Deps& deps) {
  const cni::Env& env = args.env;
  cni::Logger& log = args.log;
  // Only what DEL needs: it must work when other keys are broken or changed since ADD.
  const LenientConfig cfg = parse_lenient_config(args.conf);
  // The lease goes first and whatever else happens (cni #1167).
  if (!cfg.l2_only) cni::ipam_del(args);

  const StateDir state(cfg.data_dir);
  const auto device = held_device(state, env.container_id, env.ifname, log);
  if (!device) {
    // Never added, deleted already, or the state is gone with a reboot (sriov-cni #178):
    // nothing is known to restore, and failing would make the runtime retry forever.
    log.info("no VF record names this attachment: nothing to restore");
    state.remove_index(env.container_id, env.ifname);
    return;
  }
  const cni::FileLock lock = state.lock(*device, deps.lock_timeout);
  std::optional<VfRecord> rec;
  bool unreadable = false;
  try {
    rec = state.load_record(*device);
  } catch (const std::exception& e) {
    unreadable = true;
    log.error(std::string(e.what()) + ": leaving VF " + *device + " alone");
  }
  // An ADD killed between writing the record's temporary file and renaming it into place
  // left that file: no record exists, and every writer holds this lock, so it goes.
  if (!rec && !unreadable) state.remove_record(*device);
  if (!rec || !rec->owned_by(env.container_id, env.ifname)) {
    // sriov-cni #219: the VF went to another pod after this one's DEL was due; its record is
    // that pod's, and so is the VF.
    log.warning("not touching VF " + *device + ": " +
                (rec ? "it is held by " + rec->owner() : std::string("it has no record")) +
                ", not by this attachment");
    state.remove_index(env.container_id, env.ifname);
    return;
  }
  const cni::Sysfs sysfs(cfg.sysfs_root);
  const cni::Netns host_ns = cni::Netns::current();
  cni::NlSocket host;
  const std::unique_ptr<VfControl> vfc = deps.vf_control(cfg.sysfs_root);
  ReleaseContext ctx{state, *vfc, host, host_ns, sysfs, log};
  release_vf(ctx, *rec);
}

void cmd_check(const cni::CmdArgs& args, const Deps& deps) {
  const cni::Env& env = args.env;
  const SriovConfig cfg = parse_config(args.conf, env.args);
  if (!args.conf.prev_result) {
    throw Error(cni::kErrInvalidConfig, "invalid config: required prevResult missing");
  }
  const cni::Result& prev = *args.conf.prev_result;
  const cni::Netns pod = cni::open_pod_netns(env.netns);

  if (!cfg.l2_only) cni::ipam_check(args);

  const StateDir state(cfg.data_dir);
  const auto rec = state.load_record(cfg.device_id);
  if (!rec || !rec->owned_by(env.container_id, env.ifname)) {
    cni::check_failed("VF " + cfg.device_id + " is not held by this attachment (" +
                      (rec ? "it is held by " + rec->owner() : std::string("it has no record")) +
                      ")");
  }
  const std::unique_ptr<VfControl> vfc = deps.vf_control(cfg.sysfs_root);
  const auto vf = vfc->get(rec->pf, rec->vf_index);
  if (!vf) {
    cni::check_failed("PF " + in_quotes(rec->pf) + " has no VF " + std::to_string(rec->vf_index));
  }
  check_vf_settings(*rec, *vf, cfg.vf_settings());

  auto iface_index = cni::find_prev_interface(prev, env);
  if (!iface_index) {
    cni::check_failed("prevResult has no interface " + in_quotes(env.ifname) + " with sandbox " +
                      in_quotes(env.netns));
  }
  if (rec->dpdk) return;  // no netdev to look at
  const cni::Interface& prev_iface = prev.interfaces[*iface_index];
  cni::NlSocket pod_sock = cni::NlSocket::in(pod);
  auto link = cni::find_link(pod_sock, env.ifname);
  if (!link) {
    cni::check_failed("interface " + in_quotes(env.ifname) + " not found in netns " +
                      in_quotes(env.netns));
  }
  cni::check_mac(*link, prev_iface);
  if (prev_iface.mtu && *prev_iface.mtu != link->mtu) {
    cni::check_failed("interface " + in_quotes(env.ifname) + " has MTU " +
                      std::to_string(link->mtu) + ", prevResult says " +
                      std::to_string(*prev_iface.mtu));
  }
  cni::check_addresses(pod_sock, *link, prev, *iface_index);
  cni::check_routes(pod_sock, prev, env.netns);
}

void cmd_status(const cni::CmdArgs& args, const Deps&) {
  const LenientConfig cfg = parse_lenient_config(args.conf);
  // Multus injects the VF per pod; a config that names one itself can be checked now.
  const cni::Fields f(args.conf.raw, "");
  for (const char* key : {"deviceID", "pciBusID"}) {
    auto id = f.str(key);
    if (!id || id->empty()) continue;
    try {
      if (!cni::is_pci_address(*id)) f.fail(key, cni::quote_value(*id) + " is not a PCI address");
      const VfLocation loc = locate_vf(cni::Sysfs(cfg.sysfs_root), *id, key);
      cni::NlSocket host;
      if (!cni::find_link(host, loc.pf)) {
        throw Error(cni::kErrInternal,
                    "its PF netdev " + in_quotes(loc.pf) + " is not in the host netns");
      }
    } catch (const Error& e) {
      throw Error(cni::kErrNotAvailable, "sriov cannot add interfaces: " + e.msg());
    }
    break;
  }
  if (!cfg.l2_only) cni::ipam_status(args);
}

void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid,
            const Deps& deps) {
  cni::Logger& log = args.log;
  const LenientConfig cfg = parse_lenient_config(args.conf);
  std::vector<std::string> errors;
  // No list at all is not an empty list (SPEC §GC): then nothing of ours is collected.
  if (valid) {
    const std::set<std::pair<std::string, std::string>> keep = [&] {
      std::set<std::pair<std::string, std::string>> s;
      for (const auto& a : *valid) s.emplace(a.container_id, a.ifname);
      return s;
    }();
    const auto kept = [&](const std::string& cid, const std::string& ifname) {
      return keep.count({cid, ifname}) > 0;
    };
    const StateDir state(cfg.data_dir);
    const cni::Sysfs sysfs(cfg.sysfs_root);
    const cni::Netns host_ns = cni::Netns::current();
    cni::NlSocket host;
    const std::unique_ptr<VfControl> vfc = deps.vf_control(cfg.sysfs_root);
    ReleaseContext ctx{state, *vfc, host, host_ns, sysfs, log};
    for (const std::string& id : state.record_addresses()) {
      try {
        auto peek = state.load_record(id);
        if (!peek || kept(peek->container_id, peek->ifname)) continue;
        const cni::FileLock lock = state.lock(id, deps.lock_timeout);
        auto rec = state.load_record(id);  // again, under the lock
        if (!rec || kept(rec->container_id, rec->ifname)) continue;
        if (rec->container_id.empty()) {
          // sriov-cni's record: its owner is unknown, only a gone netns makes it garbage.
          if (!holder_alive(*rec)) state.remove_record(id);
          continue;
        }
        release_vf(ctx, *rec);
      } catch (const std::exception& e) {
        errors.push_back("VF " + id + ": " + e.what());
      }
    }
    // Indexes whose attachment is gone and whose VF record (if any) was released above, or
    // never written (an ADD killed between the two).
    for (const IndexEntry& e : state.index_entries()) {
      if (kept(e.container_id, e.ifname)) continue;
      try {
        if (auto rec = state.load_record(e.device_id);
            rec && rec->owned_by(e.container_id, e.ifname)) {
          continue;  // released above or failing; it stays with its record
        }
        state.remove_index(e.container_id, e.ifname);
      } catch (const std::exception& ex) {
        errors.push_back(ex.what());
      }
    }
  }
  if (!cfg.l2_only) {
    try {
      cni::ipam_gc(args);
    } catch (const Error& e) {
      errors.push_back("IPAM: " + e.msg());
    }
  }
  if (!errors.empty()) {
    std::string msg = "GC failed for some attachments:";
    for (const auto& e : errors) msg += " " + e + ";";
    throw Error(cni::kErrInternal, msg);
  }
}

cni::Plugin plugin(Deps deps) {
  cni::Plugin p;
  p.name = "sriov";
  p.about = "Strait sriov CNI plugin (spec 0.3.0 - 1.1.0)";
  // MAC= chooses the VF's address; IP= is for the IPAM delegate (host-local).
  p.cni_args = {"MAC", "IP"};
  p.add = [deps](const cni::CmdArgs& a) { return cmd_add(a, deps); };
  p.del = [deps](const cni::CmdArgs& a) { cmd_del(a, deps); };
  p.check = [deps](const cni::CmdArgs& a) { cmd_check(a, deps); };
  p.status = [deps](const cni::CmdArgs& a) { cmd_status(a, deps); };
  p.parse = [](const cni::CmdArgs& a) { parse_lenient_config(a.conf); };
  p.gc = [deps](const cni::CmdArgs& a, const std::optional<std::vector<cni::Attachment>>& v) {
    cmd_gc(a, v, deps);
  };
  return p;
}

}  // namespace sriov
