#include "ipam/global/config.h"

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <set>

#include "ipam/errors.h"
#include "ipam/routes.h"
#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"

namespace ipam {

namespace {

using cni::Fields;

std::string index_key(std::string_view key, size_t i) {
  return std::string(key) + "[" + std::to_string(i) + "]";
}

PoolConfig parse_pool(const Fields& f) {
  PoolConfig p;
  p.name = f.required_str("name");
  if (!cni::is_valid_name(p.name) || p.name.size() > 253) {
    f.fail("name", cni::quote_value(p.name) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
  auto cidr = f.cidr("cidr", true);
  if (!cidr) f.fail("cidr", "pool " + p.name + ": is required");
  bool v4 = cidr->ip.is_v4();
  int block_size = static_cast<int>(
      f.integer("blockSize", 0, 128).value_or(v4 ? kDefaultBlockSizeV4 : kDefaultBlockSizeV6));
  try {
    p.layout = BlockLayout(*cidr, block_size);
  } catch (const std::invalid_argument& e) {
    f.fail(f.has("blockSize") ? "blockSize" : "cidr", "pool " + p.name + ": " + e.what());
  }
  p.gateway = f.ip("gateway");
  if (p.gateway && !cidr->contains(*p.gateway)) {
    f.fail("gateway", "pool " + p.name + ": " + p.gateway->str() + " is not in " + cidr->str());
  }
  try {
    // Without a gateway, the network address stands in for it (it is not usable anyway).
    p.range = Range::make(*cidr, std::nullopt, std::nullopt, p.gateway.value_or(cidr->ip));
  } catch (const RangeError& e) {
    f.fail("cidr", "pool " + p.name + ": " + e.what());
  }
  p.node_selector = f.str_or("nodeSelector", "");
  p.namespace_selector = f.str_or("namespaceSelector", "");
  p.nat_outgoing = f.boolean("natOutgoing");
  return p;
}

std::string default_node_name(const cni::EnvMap& environ) {
  if (auto it = environ.find("K8S_NODE_NAME"); it != environ.end() && !it->second.empty()) {
    return it->second;
  }
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

StoreConfig parse_store(const Fields& ipam) {
  StoreConfig s;
  auto f = ipam.object("store");
  if (!f) return s;
  std::string type = f->str_or("type", "file");
  if (type == "file") {
    s.type = StoreConfig::Type::kFile;
    s.path = f->str_or("path", kDefaultGlobalStorePath);
    // Absolute: a relative path would name a directory under whatever working directory
    // the runtime happens to run the plugin in.
    if (s.path.empty() || s.path[0] != '/' || s.path.find('\0') != std::string::npos) {
      f->fail("path", cni::quote_value(s.path) + " must be an absolute path without NUL bytes");
    }
  } else if (type == "etcd") {
    s.type = StoreConfig::Type::kEtcd;
    auto eps = f->str_list("endpoints");
    if (!eps || eps->empty()) f->fail("endpoints", "is required for an etcd store");
    for (size_t i = 0; i < eps->size(); ++i) {
      std::string ep = (*eps)[i];
      while (!ep.empty() && ep.back() == '/') ep.pop_back();
      if (ep.rfind("http://", 0) != 0 && ep.rfind("https://", 0) != 0) {
        f->fail(index_key("endpoints", i),
                cni::quote_value((*eps)[i]) + " must be an http:// or https:// URL");
      }
      s.endpoints.push_back(ep);
    }
    s.prefix = f->str_or("prefix", kDefaultEtcdPrefix);
    while (s.prefix.size() > 1 && s.prefix.back() == '/') s.prefix.pop_back();
    if (s.prefix.empty() || s.prefix[0] != '/' || s.prefix == "/") {
      f->fail("prefix", cni::quote_value(s.prefix) + " must start with '/' and not be \"/\"");
    }
    s.ca_file = f->str_or("caFile", "");
    s.cert_file = f->str_or("certFile", "");
    s.key_file = f->str_or("keyFile", "");
    if (s.cert_file.empty() != s.key_file.empty()) {
      f->fail(s.cert_file.empty() ? "certFile" : "keyFile",
              "certFile and keyFile go together (a TLS client certificate and its key)");
    }
  } else {
    f->fail("type", cni::quote_value(type) + " is not a store type (file, etcd)");
  }
  s.timeout_ms = static_cast<int>(f->integer("timeoutMs", 1, 3600000).value_or(s.timeout_ms));
  return s;
}

}  // namespace

bool PoolConfig::selects(const std::string& node) const {
  return node_selector.empty() || fnmatch(node_selector.c_str(), node.c_str(), 0) == 0;
}

GlobalConfig parse_global_ipam(const nlohmann::json& ipam_json, const std::string& path,
                               const cni::EnvMap& environ) {
  Fields ipam(ipam_json, path);
  GlobalConfig c;
  const nlohmann::json* pools = ipam.array("pools");
  if (!pools || pools->empty()) ipam.fail("pools", "at least one pool is required");
  std::set<std::string> names;
  for (size_t i = 0; i < pools->size(); ++i) {
    std::string key = index_key("pools", i);
    if (!(*pools)[i].is_object()) {
      ipam.fail(key, "must be an object, got " + cni::quote_value((*pools)[i]));
    }
    Fields f((*pools)[i], ipam.key_path(key));
    PoolConfig p = parse_pool(f);
    if (!names.insert(p.name).second) f.fail("name", "pool " + p.name + " is defined twice");
    for (const auto& q : c.pools) {
      if (q.cidr().overlaps(p.cidr())) {
        f.fail("cidr", "pool " + p.name + " (" + p.cidr().str() + ") overlaps pool " + q.name +
                           " (" + q.cidr().str() + ")");
      }
    }
    c.pools.push_back(std::move(p));
  }

  c.node_name = ipam.str_or("nodeName", "");
  bool from_config = !c.node_name.empty();
  if (!from_config) c.node_name = default_node_name(environ);
  // The node name becomes a store key component (a directory of the file store).
  if (!cni::is_valid_name(c.node_name) || c.node_name.size() > 253) {
    std::string why = cni::quote_value(c.node_name) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$";
    if (from_config) ipam.fail("nodeName", why);
    throw cni::Error(cni::kErrInvalidConfig,
                     "invalid config: node name (K8S_NODE_NAME or host name) " + why + "; set \"" +
                         ipam.key_path("nodeName") + "\"");
  }
  c.strict_affinity = ipam.boolean_or("strictAffinity", false);
  c.max_blocks_per_node =
      static_cast<uint32_t>(ipam.integer("maxBlocksPerNode", 0, UINT32_MAX).value_or(0));
  c.empty_block_grace_s =
      ipam.integer("emptyBlockGraceSeconds", 0, 365LL * 24 * 3600).value_or(c.empty_block_grace_s);
  c.routes = parse_ipam_routes(ipam);
  c.store = parse_store(ipam);
  c.node_lock_dir = ipam.str_or("nodeLockDir", kDefaultNodeLockDir);
  if (c.node_lock_dir.find('\0') != std::string::npos ||
      (!c.node_lock_dir.empty() && c.node_lock_dir[0] != '/')) {
    ipam.fail("nodeLockDir", cni::quote_value(c.node_lock_dir) +
                                 " must be an absolute path without NUL bytes (or \"\": no lock)");
  }
  return c;
}

GlobalConfig parse_global_config(const cni::NetConf& conf, const cni::Env& env,
                                 const cni::EnvMap& environ) {
  Fields top(conf.raw, "");
  if (conf.ipam.is_null()) top.fail("ipam", "is required");
  if (!cni::is_valid_name(conf.name)) {
    top.fail("name", cni::quote_value(conf.name) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
  GlobalConfig c = parse_global_ipam(conf.ipam, "ipam", environ);
  c.network = conf.name;
  c.requested = parse_address_requests(conf, env);
  return c;
}

cni::Error request_unavailable(const AddressRequest& req, const std::string& why) {
  return cni::Error(kErrAddressUnavailable,
                    "requested IP address " + req.ip.str() + " (" + req.source + ") " + why);
}

std::vector<const PoolConfig*> pools_of_requests(const std::vector<PoolConfig>& pools,
                                                 const std::vector<AddressRequest>& requested) {
  std::vector<const PoolConfig*> out;
  std::set<int> families;
  for (const auto& req : requested) {
    auto pool = std::find_if(pools.begin(), pools.end(),
                             [&](const PoolConfig& p) { return p.cidr().contains(req.ip); });
    if (pool == pools.end()) throw request_unavailable(req, "is not in any pool");
    if (!families.insert(req.ip.family()).second) {
      throw request_unavailable(req, std::string("is a second ") +
                                         (req.ip.is_v4() ? "IPv4" : "IPv6") +
                                         " address; one address per family is given");
    }
    if (!pool->usable(req.ip)) {
      std::string what = req.ip == pool->cidr().ip                   ? "network address"
                         : pool->gateway && req.ip == *pool->gateway ? "gateway"
                                                                     : "broadcast address";
      throw request_unavailable(req, "is the " + what + " of pool " + pool->name);
    }
    out.push_back(&*pool);
  }
  return out;
}

}  // namespace ipam
