#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/ip.h"

// The records of the cluster-wide IPAM besides blocks, and where every record lives in the
// store. Key layout (relative to the store's root: a directory for the file store, the
// `prefix` for etcd, default /strait/ipam/v1):
//
//   pools/<pool>                          PoolRecord: cidr and blockSize, fixed by the first
//                                         claim (a config that changes them is refused)
//   blocks/<pool>/<ip>-<prefix>           Block (ipam/global/block.h): affinity, allocations
//   affinity/<node>/<pool>/<ip>-<prefix>  the node's claimed blocks (an index; the block's
//                                         own `affinity` is the truth)
//   handles/<network>/<containerID>/<ifname>
//                                         HandleRecord: which blocks may hold the
//                                         attachment's addresses (an index, see below)
//   nodes/<node>                          NodeRecord: underlay address and attributes
//   gc/dead-nodes/<node>                  DeadNodeMark: `global-ipam gc` found the node gone
//                                         once (dead_nodes.h: the two-observation rule)
//
// Every component is non-empty and holds no '/': pool, node, network, container ID and
// interface names cannot contain one, and a block is spelled "<ip>-<prefix>" (cidr_key).
// Keys are parsed back only by the parse_* functions below, never by offsets.
namespace ipam::records {

std::string pools_prefix();
std::string pool_key(const std::string& pool);
std::string blocks_prefix();
std::string blocks_prefix(const std::string& pool);
std::string block_key(const std::string& pool, const cni::IpNet& block);
std::string affinity_prefix();
std::string affinity_prefix(const std::string& node);
std::string affinity_prefix(const std::string& node, const std::string& pool);
std::string affinity_key(const std::string& node, const std::string& pool, const cni::IpNet& block);
std::string handles_prefix();
std::string handles_prefix(const std::string& network);
std::string nodes_prefix();
std::string node_key(const std::string& node);
std::string dead_node_marks_prefix();
std::string dead_node_mark_key(const std::string& node);

// An attachment: the handle of its addresses, "<network>/<containerID>/<ifname>" (none of the
// three can contain '/').
struct Handle {
  std::string network;
  std::string container_id;
  std::string ifname;
  std::string id() const { return network + "/" + container_id + "/" + ifname; }
  std::string key() const { return "handles/" + id(); }
  // Parses "<network>/<containerID>/<ifname>"; nullopt when it is not one.
  static std::optional<Handle> parse(const std::string& id);
  bool operator==(const Handle&) const = default;
};

// The inverse of the *_key functions: what a key names, or nullopt when it is not a key of
// that kind (another top-level folder, too few or too many components, an empty component,
// a block component that is not the canonical "<ip>-<prefix>").
struct BlockKey {
  std::string pool;
  cni::IpNet cidr;
  bool operator==(const BlockKey&) const = default;
};
struct AffinityKey {
  std::string node;
  std::string pool;
  cni::IpNet cidr;
  bool operator==(const AffinityKey&) const = default;
};
std::optional<std::string> parse_pool_key(const std::string& key);
std::optional<BlockKey> parse_block_key(const std::string& key);
std::optional<AffinityKey> parse_affinity_key(const std::string& key);
std::optional<Handle> parse_handle_key(const std::string& key);
std::optional<std::string> parse_node_key(const std::string& key);
std::optional<std::string> parse_dead_node_mark_key(const std::string& key);

// The pool's shape as first claimed.
struct PoolRecord {
  cni::IpNet cidr;
  int block_size = 0;
  nlohmann::json to_json() const;
  static PoolRecord from_json(const nlohmann::json& j);  // throws std::invalid_argument
};

// One address a handle was (about to be) given. Written before the block is, so that a
// crash between the two leaves a stale entry (ignored: the block does not hold the address
// under this handle and sequence number) and never an allocation nobody can find.
struct HandleEntry {
  std::string pool;
  cni::IpNet block;
  cni::IpAddress ip;
  uint64_t seq = 0;
  bool operator==(const HandleEntry&) const = default;
};

struct HandleRecord {
  std::string node;  // where the attachment lives: GC of that node owns it
  std::vector<HandleEntry> entries;
  nlohmann::json to_json() const;
  static HandleRecord from_json(const nlohmann::json& j);  // throws std::invalid_argument
};

// A node that one run of `global-ipam gc` found gone: when, and the latest revision of the
// node's handle and node records then (a later write for it means it is alive).
struct DeadNodeMark {
  int64_t first_seen = 0;  // unix seconds
  int64_t revision = 0;
  nlohmann::json to_json() const;
  static DeadNodeMark from_json(const nlohmann::json& j);  // throws std::invalid_argument
};

// A node as the overlays see it: the underlay address that routes to its blocks go via,
// and free-form attributes ("vtepMAC" for vxlan).
struct NodeRecord {
  std::string name;
  std::optional<cni::IpAddress> address;
  std::map<std::string, std::string> attributes;
  nlohmann::json to_json() const;
  static NodeRecord from_json(const nlohmann::json& j);  // throws std::invalid_argument
  bool operator==(const NodeRecord&) const = default;
};

}  // namespace ipam::records
