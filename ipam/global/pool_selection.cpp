#include "ipam/global/pool_selection.h"

#include <fnmatch.h>
#include <netinet/in.h>

#include <algorithm>

#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"

namespace ipam {

namespace {

using cni::Fields;

std::string family_name(int family) { return family == AF_INET ? "IPv4" : "IPv6"; }

cni::Error invalid(const std::string& why) {
  return cni::Error(cni::kErrInvalidConfig, "invalid config: " + why);
}

std::optional<NamedPools> named(std::vector<std::string> names, const std::string& source,
                                bool indexed) {
  if (names.empty()) return std::nullopt;
  NamedPools out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (std::find(out.names.begin(), out.names.end(), names[i]) != out.names.end()) continue;
    out.names.push_back(names[i]);
    out.sources.push_back(indexed ? source + "[" + std::to_string(i) + "]" : source);
  }
  return out;
}

// One annotation: a string holding a JSON list of strings ("[\"a\", \"b\"]").
std::optional<NamedPools> annotation(const Fields& annotations, const char* key) {
  std::optional<std::string> text = annotations.str(key);
  if (!text) return std::nullopt;
  nlohmann::json list = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  bool ok = list.is_array() &&
            std::all_of(list.begin(), list.end(), [](const auto& e) { return e.is_string(); });
  if (!ok) {
    annotations.fail(key, "annotation " + std::string(key) + ": " + cni::quote_value(*text) +
                              " is not a JSON list of pool names");
  }
  return named(list.get<std::vector<std::string>>(), "annotation " + std::string(key), false);
}

std::string pool_list(const std::vector<PoolConfig>& pools) {
  std::string s;
  for (const auto& p : pools) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

// The pools a named list gives for `family`, each checked; empty when it names none of
// the family. `only_family`: every name must be of it (an annotation is per family).
std::vector<const PoolConfig*> resolve(const std::vector<PoolConfig>& pools, const NamedPools& list,
                                       int family, bool only_family, const std::string& node,
                                       const std::string& ns) {
  std::vector<const PoolConfig*> out;
  for (size_t i = 0; i < list.names.size(); ++i) {
    const std::string& name = list.names[i];
    const std::string pool = "pool " + cni::quote_value(name) + " (" + list.sources[i] + ")";
    auto it = std::find_if(pools.begin(), pools.end(),
                           [&](const PoolConfig& p) { return p.name == name; });
    if (it == pools.end()) {
      throw invalid(pool + " does not exist; the pools are " + pool_list(pools));
    }
    if (it->family() != family) {
      if (!only_family) continue;
      throw invalid(pool + " is an " + family_name(it->family()) + " pool, not " +
                    family_name(family));
    }
    if (!it->selects(node)) {
      throw invalid(pool + " does not select node " + node + " (nodeSelector " +
                    cni::quote_value(it->node_selector) + ")");
    }
    if (!selects_namespace(*it, ns)) {
      throw invalid(pool + " does not select namespace " + cni::quote_value(ns) +
                    " (namespaceSelector " + cni::quote_value(it->namespace_selector) + ")");
    }
    out.push_back(&*it);
  }
  return out;
}

}  // namespace

bool selects_namespace(const PoolConfig& pool, const std::string& ns) {
  return pool.namespace_selector.empty() ||
         fnmatch(pool.namespace_selector.c_str(), ns.c_str(), 0) == 0;
}

PoolRequest parse_pool_request(const cni::NetConf& conf, const cni::Env& env) {
  PoolRequest r;
  Fields args(conf.args, "args");
  if (auto cni_args = args.object("cni")) {
    if (auto pools = cni_args->str_list("pools")) {
      r.args = named(*pools, cni_args->key_path("pools"), true);
    }
  }
  Fields runtime(conf.runtime_config, "runtimeConfig");
  if (auto annotations = runtime.object(kPodAnnotationsKey)) {
    r.ipv4 = annotation(*annotations, kIpv4PoolsAnnotation);
    r.ipv6 = annotation(*annotations, kIpv6PoolsAnnotation);
  }
  r.pod_namespace = env.args.get("K8S_POD_NAMESPACE").value_or("");
  return r;
}

std::vector<FamilyPools> select_pools(const std::vector<PoolConfig>& pools, const std::string& node,
                                      const PoolRequest& request) {
  // The config's families in order, then the other: an annotation of a family the config has
  // no pool of names a pool that cannot serve it, which is refused like any other.
  std::vector<int> families;
  auto add_family = [&](int f) {
    if (std::find(families.begin(), families.end(), f) == families.end()) families.push_back(f);
  };
  for (const auto& p : pools) add_family(p.family());
  add_family(AF_INET);
  add_family(AF_INET6);
  std::vector<FamilyPools> out;
  for (int family : families) {
    const std::string& ns = request.pod_namespace;
    FamilyPools fp{family, {}, ""};
    if (request.args) {
      fp.pools = resolve(pools, *request.args, family, false, node, ns);
      fp.source = "args.cni.pools";
    }
    const auto& by_annotation = family == AF_INET ? request.ipv4 : request.ipv6;
    if (fp.pools.empty() && by_annotation) {
      fp.pools = resolve(pools, *by_annotation, family, true, node, ns);
      fp.source = by_annotation->sources.front();
    }
    if (fp.pools.empty()) {
      fp.source = "config";
      for (const auto& p : pools) {
        if (p.family() == family && p.selects(node) && selects_namespace(p, ns)) {
          fp.pools.push_back(&p);
        }
      }
    }
    if (!fp.pools.empty()) out.push_back(std::move(fp));
  }
  return out;
}

std::vector<std::string> pool_names(const std::vector<FamilyPools>& selection) {
  std::vector<std::string> out;
  for (const auto& f : selection) {
    for (const auto* p : f.pools) out.push_back(p->name);
  }
  return out;
}

}  // namespace ipam
