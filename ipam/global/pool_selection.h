#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ipam/global/config.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"

// Which pools one pod's new addresses come from (plugins/global-ipam/README.md, "Pool
// selection"). Per address family, the first of these that names a pool of the family wins:
//   1. args.cni.pools (multus cni-args, cnitool users): a list of pool names of any family;
//   2. the pod annotation strait.io/ipv4pools or strait.io/ipv6pools (a JSON list of pool
//      names, as a string), from runtimeConfig["io.kubernetes.cri.pod-annotations"];
//   3. the config: the family's pools that select the node (nodeSelector) and the pod's
//      namespace (namespaceSelector on CNI_ARGS K8S_POD_NAMESPACE), in config order.
// Each family is decided on its own (Calico's ipv4pools/ipv6pools): a pod that names only
// IPv4 pools gets its IPv6 address from the next source that has one.
namespace ipam {

inline constexpr char kPodAnnotationsKey[] = "io.kubernetes.cri.pod-annotations";
inline constexpr char kIpv4PoolsAnnotation[] = "strait.io/ipv4pools";
inline constexpr char kIpv6PoolsAnnotation[] = "strait.io/ipv6pools";

// One list of pool names a pod gave, with where each name came from for messages.
struct NamedPools {
  std::vector<std::string> names;
  std::vector<std::string> sources;  // "args.cni.pools[1]", "annotation strait.io/ipv4pools"
};

// What the pod asked for. An empty list is the same as none (Calico).
struct PoolRequest {
  std::optional<NamedPools> args;  // args.cni.pools
  std::optional<NamedPools> ipv4;  // strait.io/ipv4pools
  std::optional<NamedPools> ipv6;  // strait.io/ipv6pools
  std::string pod_namespace;       // K8S_POD_NAMESPACE; "" when CNI_ARGS has none
};

// Reads the request from the config and CNI_ARGS. Throws cni::Error{kErrInvalidConfig} naming
// the key and the value: args.cni.pools not a list of strings, the annotations map not an
// object, an annotation not a string or not a JSON list of strings.
PoolRequest parse_pool_request(const cni::NetConf& conf, const cni::Env& env);

// The pools new addresses of one family may come from, in the order they are tried.
struct FamilyPools {
  int family = 0;  // AF_INET, AF_INET6
  std::vector<const PoolConfig*> pools;
  std::string source;  // "args.cni.pools", "annotation strait.io/ipv4pools", "config"
};

// Per family of the config (in the order the config first names them), the pools of that
// family to try; a family no source gives a pool for is left out. A pool a source names that
// does not exist, is of the other family (annotations), or does not select `node` or the
// pod's namespace is cni::Error{kErrInvalidConfig} naming the pool and where it came from. A
// source that a higher one overrides for a family is parsed but its names are not looked up.
std::vector<FamilyPools> select_pools(const std::vector<PoolConfig>& pools, const std::string& node,
                                      const PoolRequest& request);

// Whether `pool` selects pods of namespace `ns` (fnmatch(3) on namespaceSelector; an empty
// selector selects every pod, a pod without a namespace only those whose glob matches "").
bool selects_namespace(const PoolConfig& pool, const std::string& ns);

// The names of every pool of `selection`, families in order (AllocatorOptions::pools).
std::vector<std::string> pool_names(const std::vector<FamilyPools>& selection);

}  // namespace ipam
