#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "ipam/global/store.h"
#include "libcni/core/log.h"
#include "overlay/cluster.h"
#include "overlay/config.h"
#include "overlay/reconcile.h"
#include "overlay/tunnel.h"

// The route agent of an overlay (`vxlan sync`, `ipip sync`: overlay/sync_command.h): passes of
// NodeSide::ensure plus reconcile(), once or every `interval`, and with `watch` also soon after
// each change under cluster_prefixes() (ipam::KvWatch: etcd's watch, inotify on the file
// store). A burst of changes is coalesced: the pass waits until the store has been quiet for
// kDebounce (at most kMaxDebounce after the first change), so 50 writes make one or two passes;
// the periodic pass stays as the safety net. A watch that fails (the store unreachable) is
// logged and waited on again after the backoff; the store watch re-establishes itself and
// answers kResync, which starts a full pass: a change made meanwhile is applied then.
//
// A pass re-reads the underlay (it may change), makes sure of the node side (drift repair: a
// device deleted or changed by hand is made again), reads the block table and node records,
// reconciles, and makes the outgoing NAT table what the pools' natOutgoing wants
// (overlay/nat.h). A pass that fails (the store unreachable, a netlink error) changes nothing
// more: the kernel keeps what the last good pass made, the failure is logged, and the agent
// tries again after a backoff (1 s doubling to 30 s). SIGTERM and SIGINT end it cleanly
// between passes or while it waits.
namespace overlay {

struct AgentOptions {
  bool once = true;
  // Between passes when not `once` (with `watch`: the longest time between passes).
  std::chrono::milliseconds interval{std::chrono::seconds(30)};
  bool watch = false;  // not `once`: follow the store
};

inline constexpr std::chrono::milliseconds kDebounce{100};
inline constexpr std::chrono::milliseconds kMaxDebounce{1000};

using TunnelFactory = std::function<std::unique_ptr<Tunnel>(const Underlay&)>;

class Agent {
 public:
  Agent(const OverlayConfig& cfg, Overhead overhead, TunnelFactory make_tunnel,
        ipam::KvStore& store, cni::Logger& log);

  // One pass; throws what failed.
  ReconcileReport pass();
  // Runs passes as `options` say and returns the exit code: 0 after a clean stop or a
  // successful single pass, 1 when a single pass failed.
  int run(const AgentOptions& options);

 private:
  const OverlayConfig& cfg_;
  Overhead overhead_;
  TunnelFactory make_tunnel_;
  ipam::KvStore& store_;
  cni::Logger& log_;
  ClusterReader reader_;  // decodes only what changed since the previous pass
};

// "3 peers, 40 routes, 2 writes (0 node, 2 added, 0 replaced, 0 deleted, 0 peer, 0 nat)".
std::string describe(const ReconcileReport& report);

}  // namespace overlay

namespace overlay {

// The config a runtime would hand the plugin of `type` in the .conflist (or .conf) at `path`:
// that plugin's object with the list's name and cniVersion inserted, as libcni does. Throws
// std::runtime_error naming the file when it cannot be read, is no config, or has no such
// plugin; cni::Error for a malformed config.
cni::NetConf load_plugin_config(const std::string& path, const std::string& type);

}  // namespace overlay
