#include <netinet/in.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/config.h"
#include "ipam/global/pool_selection.h"
#include "libcni/core/error.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "test/support/config_error.h"

using ipam::FamilyPools;
using ipam::GlobalConfig;
using ipam::PoolRequest;
using nlohmann::json;

namespace {

// v4: a (node rack1-*), b (namespace team-*), c (every pod); v6: d, e (namespace kube-system).
GlobalConfig selection_config() {
  json ipam = {{"type", "global-ipam"},
               {"pools",
                {{{"name", "a"}, {"cidr", "10.1.0.0/16"}, {"nodeSelector", "rack1-*"}},
                 {{"name", "b"}, {"cidr", "10.2.0.0/16"}, {"namespaceSelector", "team-*"}},
                 {{"name", "c"}, {"cidr", "10.3.0.0/16"}},
                 {{"name", "d"}, {"cidr", "fd00:4::/64"}},
                 {{"name", "e"}, {"cidr", "fd00:5::/64"}, {"namespaceSelector", "kube-system"}}}}};
  return ipam::parse_global_ipam(ipam, "ipam", {{"K8S_NODE_NAME", "rack1-n1"}});
}

// A netconf with `extra` merged in (args, runtimeConfig) and CNI_ARGS `cni_args`.
PoolRequest request(const json& extra, const std::string& cni_args = "") {
  json j = {{"cniVersion", "1.1.0"}, {"name", "net"}, {"type", "macvlan"}};
  if (!extra.is_null()) j.merge_patch(extra);  // `{}` in a call is null, which would replace j
  cni::NetConf conf = cni::netconf_from_json(j, {"1.1.0"});
  cni::Env env;
  env.args = cni::parse_cni_args(cni_args);
  return ipam::parse_pool_request(conf, env);
}

json annotations(const json& map) {
  return {{"runtimeConfig", {{"io.kubernetes.cri.pod-annotations", map}}}};
}

// The pool names per family, "v4: a,c v6: d".
std::string names(const std::vector<FamilyPools>& sel) {
  std::string s;
  for (const auto& f : sel) {
    s += std::string(s.empty() ? "" : " ") + (f.family == AF_INET ? "v4:" : "v6:");
    for (size_t i = 0; i < f.pools.size(); ++i) s += (i ? "," : " ") + f.pools[i]->name;
    s += " (" + f.source + ")";
  }
  return s;
}

std::string select(const PoolRequest& r, const std::string& node = "rack1-n1") {
  GlobalConfig c = selection_config();
  return names(ipam::select_pools(c.pools, node, r));
}

using strait::unit::config_error;

}  // namespace

TEST_CASE("pool selection: the config's pools by node and namespace", "[global-ipam][pools]") {
  GlobalConfig c = selection_config();
  CHECK(c.pools[1].namespace_selector == "team-*");
  CHECK(c.pools[0].namespace_selector.empty());
  // No namespace in CNI_ARGS: only pools without a namespaceSelector.
  CHECK(select(request({})) == "v4: a,c (config) v6: d (config)");
  CHECK(select(request({}, "K8S_POD_NAMESPACE=team-x")) == "v4: a,b,c (config) v6: d (config)");
  CHECK(select(request({}, "K8S_POD_NAMESPACE=kube-system")) ==
        "v4: a,c (config) v6: d,e (config)");
  CHECK(select(request({}), "rack2-n1") == "v4: c (config) v6: d (config)");
}

TEST_CASE("pool selection: args.cni.pools > annotations > config, per family",
          "[global-ipam][pools]") {
  const std::string ns = "K8S_POD_NAMESPACE=team-x";
  json both =
      annotations({{"strait.io/ipv4pools", R"(["b"])"}, {"strait.io/ipv6pools", "[\"d\"]"}});
  CHECK(select(request(both, ns)) ==
        "v4: b (annotation strait.io/ipv4pools) v6: d "
        "(annotation strait.io/ipv6pools)");
  // Pools are tried in the order named.
  CHECK(select(request(annotations({{"strait.io/ipv4pools", R"(["c", "a", "c"])"}}))) ==
        "v4: c,a (annotation strait.io/ipv4pools) v6: d (config)");
  // args.cni.pools wins for the families it names; IPv6 still comes from the annotation.
  json args = both;
  args["args"] = {{"cni", {{"pools", {"c"}}}}};
  CHECK(select(request(args, ns)) ==
        "v4: c (args.cni.pools) v6: d (annotation strait.io/ipv6pools)");
  // Only IPv4 named: IPv6 from the config.
  CHECK(select(request({{"args", {{"cni", {{"pools", {"a"}}}}}}})) ==
        "v4: a (args.cni.pools) v6: d (config)");
  // Both families in one list.
  CHECK(select(request({{"args", {{"cni", {{"pools", {"e", "c"}}}}}}},
                       "K8S_POD_NAMESPACE=kube-system")) ==
        "v4: c (args.cni.pools) v6: e (args.cni.pools)");
  // An empty list is none.
  CHECK(select(request({{"args", {{"cni", {{"pools", json::array()}}}}}})) ==
        "v4: a,c (config) v6: d (config)");
  CHECK(select(request(annotations({{"strait.io/ipv4pools", "[]"}}))) ==
        "v4: a,c (config) v6: d (config)");
  // Other annotations are none of ours.
  CHECK(select(request(annotations({{"other/key", "x"}}))) == "v4: a,c (config) v6: d (config)");
  // A family the namespace filter leaves without a pool gets none.
  GlobalConfig c = selection_config();
  c.pools.erase(c.pools.begin() + 3);  // d
  CHECK(names(ipam::select_pools(c.pools, "rack1-n1", request({}))) == "v4: a,c (config)");
  // ... and an annotation for it names a pool that cannot serve it.
  CHECK_THROWS_WITH(
      ipam::select_pools(c.pools, "rack1-n1",
                         request(annotations({{"strait.io/ipv6pools", R"(["c"])"}}))),
      "invalid config: pool \"c\" (annotation strait.io/ipv6pools) is an IPv4 pool, not IPv6");
}

TEST_CASE("pool selection: named pools that cannot be used are code 7 naming them",
          "[global-ipam][pools]") {
  GlobalConfig c = selection_config();
  auto sel = [&](const json& extra, const std::string& cni_args = "",
                 const std::string& node = "rack1-n1") {
    return config_error([&] { ipam::select_pools(c.pools, node, request(extra, cni_args)); });
  };
  CHECK(sel({{"args", {{"cni", {{"pools", {"c", "nope"}}}}}}}) ==
        "invalid config: pool \"nope\" (args.cni.pools[1]) does not exist; the pools are a, b, "
        "c, d, e");
  CHECK(sel(annotations({{"strait.io/ipv4pools", R"(["zz"])"}})) ==
        "invalid config: pool \"zz\" (annotation strait.io/ipv4pools) does not exist; the pools "
        "are a, b, c, d, e");
  CHECK(sel(annotations({{"strait.io/ipv6pools", R"(["c"])"}})) ==
        "invalid config: pool \"c\" (annotation strait.io/ipv6pools) is an IPv4 pool, not IPv6");
  CHECK(sel({{"args", {{"cni", {{"pools", {"a"}}}}}}}, "", "rack2-n1") ==
        "invalid config: pool \"a\" (args.cni.pools[0]) does not select node rack2-n1 "
        "(nodeSelector \"rack1-*\")");
  CHECK(sel(annotations({{"strait.io/ipv4pools", R"(["b"])"}}), "K8S_POD_NAMESPACE=default") ==
        "invalid config: pool \"b\" (annotation strait.io/ipv4pools) does not select namespace "
        "\"default\" (namespaceSelector \"team-*\")");
  // The namespace filter applies to pods without a namespace too.
  CHECK(sel({{"args", {{"cni", {{"pools", {"b"}}}}}}}) ==
        "invalid config: pool \"b\" (args.cni.pools[0]) does not select namespace \"\" "
        "(namespaceSelector \"team-*\")");
  // An overridden annotation's names are not looked up (another network's pools, say).
  json over = annotations({{"strait.io/ipv4pools", R"(["other-net-pool"])"}});
  over["args"] = {{"cni", {{"pools", {"c"}}}}};
  CHECK_NOTHROW(ipam::select_pools(c.pools, "rack1-n1", request(over)));
}

TEST_CASE("pool selection: malformed requests are code 7 naming the key and value",
          "[global-ipam][pools]") {
  auto parse = [](const json& extra) { return config_error([&] { request(extra); }); };
  CHECK(parse(annotations({{"strait.io/ipv4pools", "[\"a\""}})) ==
        "invalid config: \"runtimeConfig.io.kubernetes.cri.pod-annotations.strait.io/ipv4pools\": "
        "annotation strait.io/ipv4pools: \"[\\\"a\\\"\" is not a JSON list of pool names");
  CHECK(parse(annotations({{"strait.io/ipv6pools", "\"d\""}})) ==
        "invalid config: \"runtimeConfig.io.kubernetes.cri.pod-annotations.strait.io/ipv6pools\": "
        "annotation strait.io/ipv6pools: \"\\\"d\\\"\" is not a JSON list of pool names");
  CHECK(parse(annotations({{"strait.io/ipv4pools", "[1]"}})).find("is not a JSON list") !=
        std::string::npos);
  CHECK(parse(annotations({{"strait.io/ipv4pools", json::array({"a"})}})) ==
        "invalid config: \"runtimeConfig.io.kubernetes.cri.pod-annotations.strait.io/ipv4pools\": "
        "must be a string, got array [\"a\"]");
  CHECK(parse(annotations("x")).find("\"runtimeConfig.io.kubernetes.cri.pod-annotations\"") !=
        std::string::npos);
  CHECK(parse({{"args", {{"cni", {{"pools", "a"}}}}}}).find("\"args.cni.pools\"") !=
        std::string::npos);
  CHECK(parse({{"args", {{"cni", {{"pools", {"a", 7}}}}}}}).find("\"args.cni.pools[1]\"") !=
        std::string::npos);
}

TEST_CASE("pool selection: namespaceSelector must be a string", "[global-ipam][pools]") {
  json ipam = {{"type", "global-ipam"},
               {"pools", {{{"name", "a"}, {"cidr", "10.1.0.0/16"}, {"namespaceSelector", 5}}}}};
  CHECK(config_error([&] {
          ipam::parse_global_ipam(ipam, "ipam", {{"K8S_NODE_NAME", "n1"}});
        }).find("\"ipam.pools[0].namespaceSelector\"") != std::string::npos);
}
