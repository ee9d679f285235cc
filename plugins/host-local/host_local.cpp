#include "plugins/host-local/host_local.h"

#include <algorithm>
#include <set>
#include <string>
#include <system_error>

#include "ipam/host_local/allocator.h"
#include "ipam/host_local/config.h"
#include "ipam/host_local/disk_store.h"
#include "ipam/host_local/resolv_conf.h"
#include "libcni/core/error.h"

namespace host_local {

using ipam::Allocator;
using ipam::DiskStore;
using ipam::HostLocalConfig;
using ipam::kErrAddressUnavailable;
using ipam::kErrLeaseMismatch;
using ipam::kErrNoAddress;
using ipam::LeaseOwner;
using ipam::Range;
using ipam::RangeSet;

namespace {

using cni::IpAddress;

// Which range set each requested address belongs to: one per set at most, and every one
// must fall in some set (upstream fails with "failed to allocate all requested IPs" after
// allocating; we fail before touching the store).
std::vector<std::optional<IpAddress>> assign_requested(const HostLocalConfig& cfg) {
  std::vector<std::optional<IpAddress>> out(cfg.range_sets.size());
  for (const auto& req : cfg.requested) {
    auto it = std::find_if(cfg.range_sets.begin(), cfg.range_sets.end(),
                           [&](const RangeSet& s) { return s.contains(req.ip); });
    if (it == cfg.range_sets.end()) {
      throw cni::Error(kErrAddressUnavailable,
                       "failed to allocate all requested IPs: " + req.ip.str() + " (" + req.source +
                           ") is not in any configured range");
    }
    auto idx = static_cast<size_t>(it - cfg.range_sets.begin());
    if (out[idx]) {
      throw cni::Error(kErrAddressUnavailable,
                       "failed to allocate all requested IPs: " + req.ip.str() + " (" + req.source +
                           ") and " + out[idx]->str() + " are both in range set " +
                           std::to_string(idx) + " (" + it->str() + "), which gives one address");
    }
    out[idx] = req.ip;
  }
  return out;
}

cni::Dns read_dns(const HostLocalConfig& cfg) {
  if (cfg.resolv_conf.empty()) return {};
  try {
    return ipam::read_resolv_conf(cfg.resolv_conf);
  } catch (const std::system_error& e) {
    throw cni::Error(cni::kErrInvalidConfig,
                     std::string("invalid config: \"ipam.resolvConf\": ") + e.what());
  }
}

std::string owner_text(const cni::CmdArgs& args) {
  return args.env.container_id + "/" + args.env.ifname;
}

}  // namespace

cni::Result cmd_add(const cni::CmdArgs& args) {
  HostLocalConfig cfg = ipam::parse_host_local_config(args.conf, args.env);
  auto requested = assign_requested(cfg);
  cni::Result result;
  result.dns = read_dns(cfg);

  auto store = DiskStore::open(cfg.data_dir, cfg.network, true);
  if (store->rebuilt_index()) args.log.debug("rebuilt the lease index of " + store->path());
  LeaseOwner owner{args.env.container_id, args.env.ifname};
  std::vector<IpAddress> taken;
  try {
    for (size_t i = 0; i < cfg.range_sets.size(); ++i) {
      try {
        Allocator alloc(cfg.range_sets[i], *store, i);
        result.ips.push_back(alloc.allocate(owner, requested[i]));
        taken.push_back(result.ips.back().address.ip);
      } catch (const cni::Error& e) {
        throw cni::Error(e.code(),
                         "failed to allocate for range " + std::to_string(i) + ": " + e.msg(),
                         e.details());
      }
    }
  } catch (...) {
    // A failed ADD leaves nothing behind: free what this ADD took (only that; an address the
    // attachment held before stays).
    for (const auto& ip : taken) {
      try {
        store->release(ip);
      } catch (const std::exception& e) {
        args.log.error("failed to release " + ip.str() + " after a failed ADD: " + e.what());
      }
    }
    throw;
  }
  result.routes = cfg.routes;
  std::string got;
  for (const auto& ip : taken) got += (got.empty() ? "" : ", ") + ip.str();
  args.log.info("leased " + got + " to " + owner_text(args) + " in " + store->path());
  return result;
}

void cmd_del(const cni::CmdArgs& args) {
  HostLocalConfig cfg = ipam::parse_host_local_config(args.conf, args.env);
  auto store = DiskStore::open(cfg.data_dir, cfg.network, false);
  if (!store) return;  // never allocated on this network: nothing to release
  auto released = ipam::release_owner(*store, args.env.container_id, args.env.ifname);
  for (const auto& ip : released) {
    args.log.info("released " + ip.str() + " of " + owner_text(args));
  }
}

void cmd_check(const cni::CmdArgs& args) {
  HostLocalConfig cfg = ipam::parse_host_local_config(args.conf, args.env);
  auto missing = [&]() {
    return cni::Error(kErrLeaseMismatch,
                      "host-local: failed to find address added by container " + owner_text(args));
  };
  auto store = DiskStore::open(cfg.data_dir, cfg.network, false);
  if (!store) throw missing();
  auto leases = ipam::owner_leases(*store, args.env.container_id, args.env.ifname);
  if (leases.empty()) throw missing();

  std::set<IpAddress> held;  // leased addresses inside the configured ranges
  for (size_t i = 0; i < cfg.range_sets.size(); ++i) {
    const RangeSet& set = cfg.range_sets[i];
    bool found = false;
    for (const auto& l : leases) {
      if (!set.contains(l.ip)) continue;
      found = true;
      held.insert(l.ip);
    }
    if (!found) {
      throw cni::Error(kErrLeaseMismatch, "host-local: " + owner_text(args) +
                                              " holds no address of range set " +
                                              std::to_string(i) + " (" + set.str() + ")");
    }
  }
  if (!args.conf.prev_result) return;
  std::set<IpAddress> reported;
  for (const auto& ipc : args.conf.prev_result->ips) {
    const IpAddress& ip = ipc.address.ip;
    bool ours = std::any_of(cfg.range_sets.begin(), cfg.range_sets.end(),
                            [&](const RangeSet& s) { return s.contains(ip); });
    if (!ours) continue;  // another plugin's address
    if (!held.count(ip)) {
      throw cni::Error(kErrLeaseMismatch, "host-local: prevResult address " + ip.str() +
                                              " is not leased to " + owner_text(args));
    }
    reported.insert(ip);
  }
  for (const auto& ip : held) {
    if (!reported.count(ip)) {
      throw cni::Error(kErrLeaseMismatch, "host-local: " + ip.str() + " is leased to " +
                                              owner_text(args) + " but missing from prevResult");
    }
  }
}

void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid) {
  // SPEC (GC): without the key the runtime says nothing about what is valid; an empty list
  // says nothing is.
  if (!valid) {
    args.log.debug("no cni.dev/valid-attachments in the config: nothing to collect");
    return;
  }
  HostLocalConfig cfg = ipam::parse_host_local_config(args.conf, args.env);
  auto store = DiskStore::open(cfg.data_dir, cfg.network, false);
  if (!store) return;
  auto is_valid = [&](const LeaseOwner& o) {
    return std::any_of(valid->begin(), valid->end(), [&](const cni::Attachment& a) {
      // A legacy lease (no ifname) belongs to every interface of its container.
      return a.container_id == o.container_id && (o.legacy() || a.ifname == o.ifname);
    });
  };
  std::optional<std::system_error> first_error;
  for (const auto& l : store->list()) {
    if (is_valid(l.owner)) continue;
    try {
      store->release(l.ip);
      args.log.info("gc: released " + l.ip.str() + " of " + l.owner.container_id + "/" +
                    l.owner.ifname);
    } catch (const std::system_error& e) {
      // Keep going: one stuck file must not pin every other stale lease.
      args.log.error(std::string("gc: ") + e.what());
      if (!first_error) first_error = e;
    }
  }
  if (first_error) throw *first_error;
}

void cmd_status(const cni::CmdArgs& args) {
  HostLocalConfig cfg = ipam::parse_host_local_config(args.conf, args.env);
  std::vector<IpAddress> leased;
  try {
    auto store = DiskStore::open(cfg.data_dir, cfg.network, true);
    store->check_writable();
    leased = store->addresses();
  } catch (const std::system_error& e) {
    throw cni::Error(cni::kErrNotAvailable,
                     std::string("host-local: lease store unavailable: ") + e.what());
  }
  std::sort(leased.begin(), leased.end());
  leased.erase(std::unique(leased.begin(), leased.end()), leased.end());
  for (const auto& set : cfg.range_sets) {
    cni::Uint128 used = 0;
    for (const auto& ip : leased) {
      const Range* r = set.range_for(ip);
      if (r && ip != r->gateway) ++used;
    }
    if (used >= set.capacity()) {
      throw cni::Error(cni::kErrNotAvailable,
                       "no IP addresses available in range set: " + set.str());
    }
  }
}

cni::Plugin plugin() {
  cni::Plugin p;
  p.name = "host-local";
  p.about = "CNI host-local IPAM plugin (Strait)";
  p.cni_args = {"IP"};
  p.add = cmd_add;
  p.del = cmd_del;
  p.check = cmd_check;
  p.gc = cmd_gc;
  p.status = cmd_status;
  p.parse = [](const cni::CmdArgs& a) { ipam::parse_host_local_config(a.conf, a.env); };
  return p;
}

}  // namespace host_local
