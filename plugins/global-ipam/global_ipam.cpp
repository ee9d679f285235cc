#include "plugins/global-ipam/global_ipam.h"

#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <system_error>

#include "ipam/errors.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/block_cache.h"
#include "ipam/global/config.h"
#include "ipam/global/node_lock.h"
#include "ipam/global/pool_selection.h"
#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"

namespace global_ipam {

using ipam::AllocatorOptions;
using ipam::Assignment;
using ipam::BlockAllocator;
using ipam::FamilyPools;
using ipam::GlobalConfig;
using ipam::kErrAddressUnavailable;
using ipam::kErrLeaseMismatch;
using ipam::kErrNoAddress;
using ipam::KvStore;
using ipam::NodeLock;
using ipam::PoolConfig;

namespace {

using cni::IpAddress;
using ipam::records::Handle;

// One verb's config, store and allocator.
struct Session {
  explicit Session(const cni::CmdArgs& args)
      : cfg(config(args)),
        selection(select(cfg, args)),
        store(ipam::open_global_store(cfg.store)),
        alloc(cfg.pools, *store, pod_options()),
        handle{cfg.network, args.env.container_id, args.env.ifname} {}
  // An allocator that keeps the node's cache beside the node lock (held: nobody else of this
  // node touches the cache meanwhile) when the store has transactions (etcd: the cache turns
  // an ADD or DEL into one round trip; a local store reads faster than it keeps a cache);
  // else the plain one.
  BlockAllocator with_cache(const ipam::NodeLock& lock, std::optional<ipam::BlockCache>& cache) {
    if (!lock.held() || !store->transactions()) {
      return BlockAllocator(cfg.pools, *store, pod_options());
    }
    cache.emplace(ipam::BlockCache::path_for(lock.queue_dir(), store->describe()));
    AllocatorOptions o = pod_options();
    o.cache = &*cache;
    return BlockAllocator(cfg.pools, *store, o);
  }

  static GlobalConfig config(const cni::CmdArgs& args) {
    GlobalConfig c = ipam::parse_global_config(args.conf, args.env, args.environ);
    // A requested address the config alone refuses is refused before the store is opened
    // or the node lock taken (either creates files).
    if (args.env.command == "ADD") ipam::pools_of_requests(c.pools, c.requested);
    return c;
  }

  // ADD and CHECK: the pools this pod's new addresses come from (pool_selection.h), checked
  // before the store is opened or the node lock taken. DEL, GC and STATUS look at what is
  // held, whatever the pod asks for now.
  static std::optional<std::vector<FamilyPools>> select(const GlobalConfig& c,
                                                        const cni::CmdArgs& args) {
    if (args.env.command != "ADD" && args.env.command != "CHECK") return std::nullopt;
    ipam::PoolRequest request = ipam::parse_pool_request(args.conf, args.env);
    auto selection = ipam::select_pools(c.pools, c.node_name, request);
    if (selection.empty() && c.requested.empty() && args.env.command == "ADD") {
      throw cni::Error(kErrNoAddress, "no pool selects node " + c.node_name + " and namespace " +
                                          cni::quote_value(request.pod_namespace) +
                                          " (nodeSelector, namespaceSelector)");
    }
    return selection;
  }

  AllocatorOptions pod_options() const {
    AllocatorOptions o = options(cfg);
    if (selection) o.pools = ipam::pool_names(*selection);
    return o;
  }

  static AllocatorOptions options(const GlobalConfig& c) {
    AllocatorOptions o;
    o.node = c.node_name;
    o.strict_affinity = c.strict_affinity;
    o.max_blocks_per_node = c.max_blocks_per_node;
    o.empty_block_grace_s = c.empty_block_grace_s;
    return o;
  }

  const PoolConfig* pool(const std::string& name) const {
    for (const auto& p : cfg.pools) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }

  GlobalConfig cfg;
  std::optional<std::vector<FamilyPools>> selection;
  std::unique_ptr<KvStore> store;
  BlockAllocator alloc;
  Handle handle;
};

// OS faults of the file store become the spec's I/O error, naming the path.
template <class Fn>
auto store_io(Fn fn) {
  try {
    return fn();
  } catch (const std::system_error& e) {
    throw cni::Error(cni::kErrIo, std::string("global-ipam: ") + e.what());
  }
}

std::string describe(const Assignment& a) {
  std::string s = a.ip.str() + " (block " + a.block.str() + " of " +
                  (a.block_affinity.empty() ? "no node" : "node " + a.block_affinity);
  if (a.borrowed) s += ", borrowed";
  if (a.reused) s += ", held already";
  return s + ")";
}

// This node's single-flight lock for ADD and DEL (best effort: see NodeLock). The store's
// connection is opened first: its connect (and TLS handshake) would otherwise happen inside
// the lock, where every waiter behind it waits for it too.
ipam::NodeLock lock_node(const Session& s, const cni::CmdArgs& args) {
  s.store->prepare();
  auto lock = NodeLock::acquire(s.cfg.node_lock_dir, s.cfg.node_name,
                                std::chrono::milliseconds(s.cfg.store.timeout_ms));
  if (!lock.why_not().empty())
    args.log.warning("going on without the node lock: " + lock.why_not());
  return lock;
}

}  // namespace

cni::Result cmd_add(const cni::CmdArgs& args) {
  return store_io([&] {
    Session s(args);
    auto lock = lock_node(s, args);
    std::optional<ipam::BlockCache> cache;
    auto alloc = s.with_cache(lock, cache);
    auto got = alloc.assign(s.handle, s.cfg.requested);
    if (cache) cache->save();
    lock = NodeLock();  // the node's state is written: the next waiter need not wait for the rest
    cni::Result r;
    for (const auto& a : got) {
      const PoolConfig* p = s.pool(a.pool);
      cni::IpConfig ipc;
      ipc.address = cni::IpNet{a.ip, p ? p->cidr().prefix : a.block.prefix};
      if (p) ipc.gateway = p->gateway;
      r.ips.push_back(ipc);
      args.log.info("assigned " + describe(a) + " to " + s.handle.id() + " on node " +
                    s.cfg.node_name + " from " + s.store->describe());
    }
    r.routes = s.cfg.routes;
    return r;
  });
}

void cmd_del(const cni::CmdArgs& args) {
  store_io([&] {
    Session s(args);
    auto lock = lock_node(s, args);
    std::optional<ipam::BlockCache> cache;
    auto alloc = s.with_cache(lock, cache);
    auto released = alloc.release(s.handle);
    if (cache) cache->save();
    lock = NodeLock();
    for (const auto& a : released) {
      args.log.info("released " + a.ip.str() + " of " + s.handle.id());
    }
  });
}

void cmd_check(const cni::CmdArgs& args) {
  store_io([&] {
    Session s(args);
    auto held = s.alloc.held(s.handle);
    auto mismatch = [&](const std::string& why) {
      return cni::Error(kErrLeaseMismatch, "global-ipam: " + why);
    };
    if (held.empty()) throw mismatch("no address is held by " + s.handle.id());
    std::set<int> families;
    for (const auto& f : *s.selection) families.insert(f.family);
    for (int f : families) {
      bool have = std::any_of(held.begin(), held.end(),
                              [&](const Assignment& a) { return a.ip.family() == f; });
      if (!have) {
        throw mismatch(s.handle.id() + " holds no " + std::string(f == AF_INET ? "IPv4" : "IPv6") +
                       " address");
      }
    }
    if (!args.conf.prev_result) return;
    std::set<IpAddress> reported;
    for (const auto& ipc : args.conf.prev_result->ips) {
      const IpAddress& ip = ipc.address.ip;
      bool ours = std::any_of(s.cfg.pools.begin(), s.cfg.pools.end(),
                              [&](const PoolConfig& p) { return p.cidr().contains(ip); });
      if (!ours) continue;  // another plugin's address
      bool is_held =
          std::any_of(held.begin(), held.end(), [&](const Assignment& a) { return a.ip == ip; });
      if (!is_held) {
        throw mismatch("prevResult address " + ip.str() + " is not held by " + s.handle.id());
      }
      reported.insert(ip);
    }
    for (const auto& a : held) {
      if (!reported.count(a.ip)) {
        throw mismatch(a.ip.str() + " is held by " + s.handle.id() +
                       " but missing from prevResult");
      }
    }
  });
}

void cmd_gc(const cni::CmdArgs& args, const std::optional<std::vector<cni::Attachment>>& valid) {
  // SPEC (GC): no key says nothing about what is valid; an empty list says nothing is.
  if (!valid) {
    args.log.debug("no cni.dev/valid-attachments in the config: nothing to collect");
    return;
  }
  store_io([&] {
    Session s(args);
    // This node's attachments of this network: the runtime's list names no others.
    auto report = s.alloc.collect({s.cfg.network, s.cfg.node_name}, [&](const Handle& h) {
      return std::any_of(valid->begin(), valid->end(), [&](const cni::Attachment& a) {
        return a.container_id == h.container_id && a.ifname == h.ifname;
      });
    });
    for (const auto& c : report.released) {
      args.log.info("gc: released " + c.address.ip.str() + " of " + c.handle + " (block " +
                    c.address.block.str() + ")");
    }
    if (!report.errors.empty()) {
      std::string more;
      for (size_t i = 1; i < report.errors.size(); ++i)
        more += (more.empty() ? "" : "; ") + report.errors[i];
      throw cni::Error(cni::kErrTryAgainLater, "gc: " + report.errors.front(), more);
    }
  });
}

void cmd_status(const cni::CmdArgs& args) {
  GlobalConfig cfg = ipam::parse_global_config(args.conf, args.env, args.environ);
  try {
    auto store = ipam::open_global_store(cfg.store);
    store->ping();
    BlockAllocator alloc(cfg.pools, *store, Session::options(cfg));
    alloc.check_available();
  } catch (const cni::Error& e) {
    if (e.code() != kErrNoAddress && e.code() != cni::kErrTryAgainLater) throw;
    throw cni::Error(cni::kErrNotAvailable, "global-ipam: " + e.msg(), e.details());
  } catch (const std::system_error& e) {
    throw cni::Error(cni::kErrNotAvailable,
                     std::string("global-ipam: store unavailable: ") + e.what());
  }
}

cni::Plugin plugin() {
  cni::Plugin p;
  p.name = "global-ipam";
  p.about = "CNI global-ipam plugin (Strait): cluster-wide IPAM, pools cut into node-affine blocks";
  p.cni_args = {"IP"};
  p.add = cmd_add;
  p.del = cmd_del;
  p.check = cmd_check;
  p.gc = cmd_gc;
  p.status = cmd_status;
  p.parse = [](const cni::CmdArgs& a) {
    GlobalConfig c = ipam::parse_global_config(a.conf, a.env, a.environ);
    ipam::select_pools(c.pools, c.node_name, ipam::parse_pool_request(a.conf, a.env));
  };
  return p;
}

}  // namespace global_ipam
