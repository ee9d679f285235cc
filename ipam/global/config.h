#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipam/address_request.h"
#include "ipam/global/block_layout.h"
#include "ipam/range.h"
#include "libcni/core/error.h"
#include "libcni/core/ip.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"

namespace ipam {

inline constexpr char kDefaultGlobalStorePath[] = "/var/lib/cni/global-ipam";
inline constexpr char kDefaultEtcdPrefix[] = "/strait/ipam/v1";
inline constexpr int kDefaultStoreTimeoutMs = 10000;
inline constexpr char kDefaultNodeLockDir[] = "/run/strait/global-ipam";
// How long an empty block stays its node's before another node that needs one may take it
// back (emptyBlockGraceSeconds): ten minutes, long enough that a node whose pods are being
// replaced keeps its blocks (and its routes), short enough for tidal load.
inline constexpr int64_t kDefaultEmptyBlockGraceSeconds = 600;

// One pool of the cluster-wide IPAM: a CIDR cut into blocks.
struct PoolConfig {
  std::string name;
  BlockLayout layout;  // the CIDR and the block size
  // The addresses that may be handed out, as a host-local range: the pool's network address
  // and (IPv4) its broadcast address are not, and neither is the gateway. A block's own
  // network and broadcast addresses are (blocks are routed, not subnets).
  Range range;
  std::optional<cni::IpAddress> gateway;
  std::string node_selector;  // fnmatch(3) glob on the node name; empty: every node
  // fnmatch(3) glob on the pod's namespace (CNI_ARGS K8S_POD_NAMESPACE); empty: every pod
  // (pool_selection.h).
  std::string namespace_selector;
  // natOutgoing: whether the overlay agents masquerade this pool's pods' traffic to addresses
  // outside every pool; unset: true there (Calico's default pool). global-ipam itself only
  // validates it.
  std::optional<bool> nat_outgoing;

  const cni::IpNet& cidr() const { return layout.pool(); }
  int family() const { return layout.family(); }
  bool selects(const std::string& node) const;
  bool masquerades() const { return nat_outgoing.value_or(true); }
  bool usable(const cni::IpAddress& ip) const {
    return range.contains(ip) && (!gateway || ip != *gateway);
  }
};

struct StoreConfig {
  enum class Type { kFile, kEtcd };
  Type type = Type::kFile;
  std::string path = kDefaultGlobalStorePath;  // file
  std::vector<std::string> endpoints;          // etcd: "http(s)://host:port"
  std::string prefix = kDefaultEtcdPrefix;     // etcd, no trailing '/'
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // How long a store may stay unreachable (etcd) or locked (file) before a verb gives up
  // with kErrTryAgainLater.
  int timeout_ms = kDefaultStoreTimeoutMs;
};

// The `ipam` block of global-ipam (plugins/global-ipam/README.md lists every key).
struct GlobalConfig {
  std::string network;  // the config's name: the first part of every handle
  std::vector<PoolConfig> pools;
  std::string node_name;
  bool strict_affinity = false;
  uint32_t max_blocks_per_node = 0;                              // per pool; 0: no cap
  int64_t empty_block_grace_s = kDefaultEmptyBlockGraceSeconds;  // 0: never released
  std::vector<cni::Route> routes;
  StoreConfig store;
  // Where ADD and DEL take this node's best-effort single-flight lock (global_node_lock.h);
  // empty: none.
  std::string node_lock_dir = kDefaultNodeLockDir;
  std::vector<AddressRequest> requested;
};

// Reads and validates `ipam` (an object; `path` names it in messages, "ipam"). The node name
// is `nodeName`, else K8S_NODE_NAME from `environ`, else the host name. Faults throw
// cni::Error{kErrInvalidConfig} naming the key and the pool: a missing or overlapping pool,
// a blockSize outside 20..32 (116..128) or larger than the pool, a gateway outside it.
GlobalConfig parse_global_ipam(const nlohmann::json& ipam, const std::string& path,
                               const cni::EnvMap& environ);

// The whole plugin config: parse_global_ipam of conf.ipam plus the network name and the
// requested addresses (CNI_ARGS IP, args.cni.ips, runtimeConfig.ips).
GlobalConfig parse_global_config(const cni::NetConf& conf, const cni::Env& env,
                                 const cni::EnvMap& environ);

// An error (kErrAddressUnavailable) about one requested address: "requested IP address
// 10.1.0.5 (CNI_ARGS IP) <why>".
cni::Error request_unavailable(const AddressRequest& req, const std::string& why);

// What the config alone tells about the requested addresses, so an ADD can refuse them before
// it takes the node lock or opens the store: each lies in a pool, there is one per family, and
// none is a pool's network, broadcast or gateway address (request_unavailable otherwise).
// Returns the pool of each request, in order. Whether an address is free needs the store.
std::vector<const PoolConfig*> pools_of_requests(const std::vector<PoolConfig>& pools,
                                                 const std::vector<AddressRequest>& requested);

}  // namespace ipam
