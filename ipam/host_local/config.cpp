#include "ipam/host_local/config.h"

#include <string>

#include "ipam/routes.h"
#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"

namespace ipam {

namespace {

using cni::Fields;

std::string index_key(std::string_view key, size_t i) {
  return std::string(key) + "[" + std::to_string(i) + "]";
}

// One range object; `f` reads it at its path ("ipam.ranges[0][1]", or "ipam" for the legacy
// top-level range).
Range parse_range(const Fields& f) {
  auto subnet = f.cidr("subnet", true);
  if (!subnet) f.fail("subnet", "is required");
  try {
    return Range::make(*subnet, f.ip("rangeStart"), f.ip("rangeEnd"), f.ip("gateway"));
  } catch (const RangeError& e) {
    f.fail(e.key(), e.what());
  }
}

// A list of range sets (ipam.ranges, runtimeConfig.ipRanges) read through `parent`.
void parse_range_sets(const Fields& parent, std::string_view key, std::vector<RangeSet>& sets,
                      std::vector<std::string>& keys) {
  const nlohmann::json* list = parent.array(key);
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    std::string set_key = index_key(key, i);
    const nlohmann::json& set = (*list)[i];
    if (!set.is_array()) {
      parent.fail(set_key, "must be a list of ranges, got " + cni::quote_value(set));
    }
    if (set.empty()) parent.fail(set_key, "empty range set");
    std::vector<Range> ranges;
    for (size_t j = 0; j < set.size(); ++j) {
      ranges.push_back(parse_range(Fields(set[j], parent.key_path(index_key(set_key, j)))));
    }
    try {
      sets.push_back(RangeSet::make(std::move(ranges)));
    } catch (const RangeError& e) {
      parent.fail(set_key + e.key(), e.what());
    }
    keys.push_back(set_key);
  }
}

}  // namespace

HostLocalConfig parse_host_local_config(const cni::NetConf& conf, const cni::Env& env) {
  Fields top(conf.raw, "");
  if (conf.ipam.is_null()) top.fail("ipam", "is required (IPAM config missing 'ipam' key)");
  Fields ipam(conf.ipam, "ipam");
  HostLocalConfig c;
  // The name becomes a directory: parse_netconf enforces the spec's pattern; say so again here
  // rather than trust every caller.
  if (!cni::is_valid_name(conf.name)) {
    top.fail("name", cni::quote_value(conf.name) + " must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  }
  c.network = conf.name;

  // Upstream prepends the capability's ranges to the configured ones, and the legacy
  // top-level range to ipam.ranges.
  Fields runtime(conf.runtime_config, "runtimeConfig");
  std::vector<std::string> keys;  // each set's key, for overlap messages
  std::vector<RangeSet> runtime_sets;
  std::vector<std::string> runtime_keys;
  parse_range_sets(runtime, "ipRanges", runtime_sets, runtime_keys);
  for (auto& k : runtime_keys) k = runtime.key_path(k);
  c.range_sets = std::move(runtime_sets);
  keys = std::move(runtime_keys);
  if (ipam.has("subnet")) {
    c.range_sets.push_back(RangeSet{{parse_range(ipam)}});
    keys.push_back("ipam");
  }
  std::vector<RangeSet> sets;
  std::vector<std::string> set_keys;
  parse_range_sets(ipam, "ranges", sets, set_keys);
  for (size_t i = 0; i < sets.size(); ++i) {
    c.range_sets.push_back(std::move(sets[i]));
    keys.push_back(ipam.key_path(set_keys[i]));
  }
  if (c.range_sets.empty()) ipam.fail("ranges", "no IP ranges specified");
  try {
    check_disjoint(c.range_sets);
  } catch (const RangeError& e) {
    size_t j = std::stoul(e.key().substr(1));
    throw cni::Error(cni::kErrInvalidConfig, "invalid config: \"" + keys[j] + "\": " + e.what());
  }

  c.routes = parse_ipam_routes(ipam);
  c.data_dir = ipam.str_or("dataDir", "");
  if (c.data_dir.empty()) c.data_dir = kDefaultDataDir;
  if (c.data_dir.find('\0') != std::string::npos) ipam.fail("dataDir", "contains a NUL byte");
  c.resolv_conf = ipam.str_or("resolvConf", "");

  c.requested = parse_address_requests(conf, env);
  return c;
}

}  // namespace ipam
