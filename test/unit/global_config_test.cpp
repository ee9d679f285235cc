#include <unistd.h>

#include <climits>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "ipam/global/config.h"
#include "libcni/core/error.h"
#include "libcni/protocol/version.h"

using cni::IpAddress;
using cni::IpNet;
using ipam::GlobalConfig;
using ipam::StoreConfig;
using nlohmann::json;

namespace {

GlobalConfig parse(const json& ipam, const cni::EnvMap& environ = {{"K8S_NODE_NAME", "node-1"}}) {
  return ipam::parse_global_ipam(ipam, "ipam", environ);
}

// The message of the cni::Error{kErrInvalidConfig} parse throws.
std::string config_error(const json& ipam) {
  try {
    parse(ipam);
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInvalidConfig);
    return e.msg();
  }
  return "(no error)";
}

json pool(const char* name, const char* cidr) { return {{"name", name}, {"cidr", cidr}}; }

}  // namespace

TEST_CASE("global-ipam config defaults", "[global-ipam][config]") {
  GlobalConfig c = parse({{"pools", {pool("v4", "10.16.0.0/16"), pool("v6", "fd00:10::/64")}}});
  REQUIRE(c.pools.size() == 2);
  CHECK(c.pools[0].layout.block_size() == 27);
  CHECK(c.pools[1].layout.block_size() == 122);
  CHECK(c.pools[0].cidr() == IpNet::parse("10.16.0.0/16"));
  CHECK_FALSE(c.pools[0].gateway);
  CHECK(c.pools[0].node_selector.empty());
  CHECK(c.node_name == "node-1");
  CHECK_FALSE(c.strict_affinity);
  CHECK(c.max_blocks_per_node == 0);
  CHECK(c.routes.empty());
  CHECK(c.store.type == StoreConfig::Type::kFile);
  CHECK(c.store.path == "/var/lib/cni/global-ipam");
  CHECK(c.store.timeout_ms == 10000);
  CHECK(c.node_lock_dir == "/run/strait/global-ipam");
  CHECK(c.empty_block_grace_s == 600);

  // Usable: not the pool's network, broadcast (IPv4) or gateway; block edges are.
  const auto& p = c.pools[0];
  CHECK_FALSE(p.usable(IpAddress::parse("10.16.0.0")));
  CHECK_FALSE(p.usable(IpAddress::parse("10.16.255.255")));
  CHECK(p.usable(IpAddress::parse("10.16.0.1")));  // no gateway configured
  CHECK(p.usable(IpAddress::parse("10.16.0.31")));
  CHECK(p.usable(IpAddress::parse("10.16.0.32")));
  CHECK_FALSE(p.usable(IpAddress::parse("10.17.0.1")));
  CHECK_FALSE(c.pools[1].usable(IpAddress::parse("fd00:10::")));
  CHECK(c.pools[1].usable(IpAddress::parse("fd00:10::ffff:ffff:ffff:ffff")));
}

TEST_CASE("global-ipam config keys", "[global-ipam][config]") {
  json ipam = {{"pools",
                {{{"name", "a"},
                  {"cidr", "10.1.0.0/24"},
                  {"blockSize", 28},
                  {"gateway", "10.1.0.1"},
                  {"nodeSelector", "rack1-*"}}}},
               {"nodeName", "rack1-n3"},
               {"strictAffinity", true},
               {"maxBlocksPerNode", 4},
               {"emptyBlockGraceSeconds", 0},
               {"nodeLockDir", ""},
               {"routes", {{{"dst", "0.0.0.0/0"}}, {{"dst", "192.0.2.0/24"}, {"gw", "10.1.0.9"}}}},
               {"store",
                {{"type", "etcd"},
                 {"endpoints", {"http://127.0.0.1:2379/", "https://[::1]:2379"}},
                 {"prefix", "/x/y/"},
                 {"caFile", "/ca"},
                 {"certFile", "/c"},
                 {"keyFile", "/k"},
                 {"timeoutMs", 1500}}}};
  GlobalConfig c = parse(ipam, {{"K8S_NODE_NAME", "ignored"}});
  CHECK(c.node_name == "rack1-n3");
  CHECK(c.pools[0].layout.block_size() == 28);
  CHECK(c.pools[0].gateway == IpAddress::parse("10.1.0.1"));
  CHECK_FALSE(c.pools[0].usable(IpAddress::parse("10.1.0.1")));
  CHECK(c.pools[0].selects("rack1-n3"));
  CHECK_FALSE(c.pools[0].selects("rack2-n3"));
  CHECK(c.strict_affinity);
  CHECK(c.max_blocks_per_node == 4);
  CHECK(c.empty_block_grace_s == 0);  // never released
  CHECK(c.node_lock_dir.empty());     // no node lock
  REQUIRE(c.routes.size() == 2);
  CHECK(c.routes[1].gw == IpAddress::parse("10.1.0.9"));
  CHECK(c.store.type == StoreConfig::Type::kEtcd);
  CHECK(c.store.endpoints ==
        std::vector<std::string>{"http://127.0.0.1:2379", "https://[::1]:2379"});
  CHECK(c.store.prefix == "/x/y");
  CHECK(c.store.ca_file == "/ca");
  CHECK(c.store.cert_file == "/c");
  CHECK(c.store.key_file == "/k");
  CHECK(c.store.timeout_ms == 1500);
}

TEST_CASE("global-ipam node name falls back to the host name", "[global-ipam][config]") {
  char host[HOST_NAME_MAX + 1] = {};
  REQUIRE(gethostname(host, sizeof host - 1) == 0);
  GlobalConfig c = parse({{"pools", {pool("a", "10.0.0.0/24")}}}, {});
  CHECK(c.node_name == host);
}

TEST_CASE("global-ipam config errors name the pool and key", "[global-ipam][config]") {
  CHECK(config_error(json::object()) ==
        "invalid config: \"ipam.pools\": at least one pool is required");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/16"), pool("b", "10.0.128.0/24")}}}) ==
        "invalid config: \"ipam.pools[1].cidr\": pool b (10.0.128.0/24) overlaps pool a "
        "(10.0.0.0/16)");
  CHECK(config_error({{"pools", {{{"name", "a"}, {"cidr", "10.0.0.0/28"}, {"blockSize", 27}}}}}) ==
        "invalid config: \"ipam.pools[0].blockSize\": pool a: blockSize 27 does not fit in "
        "10.0.0.0/28 (a block must not be larger than its pool)");
  CHECK(config_error({{"pools", {pool("small", "10.0.0.0/28")}}}) ==
        "invalid config: \"ipam.pools[0].cidr\": pool small: blockSize 27 does not fit in "
        "10.0.0.0/28 (a block must not be larger than its pool)");
  CHECK(config_error({{"pools", {{{"name", "a"}, {"cidr", "10.0.0.0/8"}, {"blockSize", 19}}}}}) ==
        "invalid config: \"ipam.pools[0].blockSize\": pool a: blockSize 19 is outside 20..32 "
        "for an IPv4 pool");
  CHECK(config_error({{"pools", {{{"name", "a"}, {"cidr", "fd00::/64"}, {"blockSize", 64}}}}}) ==
        "invalid config: \"ipam.pools[0].blockSize\": pool a: blockSize 64 is outside 116..128 "
        "for an IPv6 pool");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.1/24")}}}) ==
        "invalid config: \"ipam.pools[0].cidr\": \"10.0.0.1/24\" has host bits set (network is "
        "10.0.0.0/24)");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24"), pool("a", "10.1.0.0/24")}}}) ==
        "invalid config: \"ipam.pools[1].name\": pool a is defined twice");
  CHECK(config_error(
            {{"pools", {{{"name", "a"}, {"cidr", "10.0.0.0/24"}, {"gateway", "10.0.1.1"}}}}}) ==
        "invalid config: \"ipam.pools[0].gateway\": pool a: 10.0.1.1 is not in 10.0.0.0/24");
  CHECK(config_error({{"pools", {pool("a/b", "10.0.0.0/24")}}}) ==
        "invalid config: \"ipam.pools[0].name\": \"a/b\" must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  CHECK(config_error({{"pools", {{{"name", "a"}}}}}) ==
        "invalid config: \"ipam.pools[0].cidr\": pool a: is required");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24")}}, {"nodeName", "../x"}}) ==
        "invalid config: \"ipam.nodeName\": \"../x\" must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24")}}, {"maxBlocksPerNode", -1}}) ==
        "invalid config: \"ipam.maxBlocksPerNode\": -1 is out of range [0, 4294967295]");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24")}}, {"emptyBlockGraceSeconds", -5}}) ==
        "invalid config: \"ipam.emptyBlockGraceSeconds\": -5 is out of range [0, 31536000]");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24")}}, {"store", {{"type", "redis"}}}}) ==
        "invalid config: \"ipam.store.type\": \"redis\" is not a store type (file, etcd)");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24")}}, {"store", {{"type", "etcd"}}}}) ==
        "invalid config: \"ipam.store.endpoints\": is required for an etcd store");
  CHECK(config_error({{"pools", {pool("a", "10.0.0.0/24")}},
                      {"store", {{"type", "etcd"}, {"endpoints", {"127.0.0.1:2379"}}}}}) ==
        "invalid config: \"ipam.store.endpoints[0]\": \"127.0.0.1:2379\" must be an http:// or "
        "https:// URL");
  CHECK(config_error(
            {{"pools", {pool("a", "10.0.0.0/24")}},
             {"store", {{"type", "etcd"}, {"endpoints", {"http://h:1"}}, {"certFile", "/c"}}}}) ==
        "invalid config: \"ipam.store.keyFile\": certFile and keyFile go together (a TLS client "
        "certificate and its key)");
}

TEST_CASE("global-ipam config reads requested addresses", "[global-ipam][config]") {
  auto conf = cni::parse_netconf(
      R"({"cniVersion":"1.0.0","name":"net1","type":"global-ipam",
          "ipam":{"pools":[{"name":"a","cidr":"10.0.0.0/24"}]},
          "args":{"cni":{"ips":["10.0.0.9"]}},
          "runtimeConfig":{"ips":["10.0.0.7/24","10.0.0.9"]}})",
      cni::supported_versions());
  cni::Env env;
  env.args = cni::parse_cni_args("IP=10.0.0.5,fd00::5");
  GlobalConfig c = ipam::parse_global_config(conf, env, {{"K8S_NODE_NAME", "n"}});
  CHECK(c.network == "net1");
  REQUIRE(c.requested.size() == 4);
  CHECK(c.requested[0].ip == IpAddress::parse("10.0.0.5"));
  CHECK(c.requested[0].source == "CNI_ARGS IP");
  CHECK(c.requested[1].ip == IpAddress::parse("fd00::5"));
  CHECK(c.requested[2].ip == IpAddress::parse("10.0.0.9"));
  CHECK(c.requested[2].source == "args.cni.ips[0]");
  CHECK(c.requested[3].ip == IpAddress::parse("10.0.0.7"));
  CHECK(c.requested[3].source == "runtimeConfig.ips[0]");
}
