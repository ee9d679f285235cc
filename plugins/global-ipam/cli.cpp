#include "plugins/global-ipam/cli.h"

#include <CLI/CLI.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ipam/global/config.h"
#include "ipam/global/records.h"
#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"
#include "plugins/global-ipam/consistency_check.h"
#include "plugins/global-ipam/operator_files.h"
#include "plugins/global-ipam/repair.h"
#include "plugins/global-ipam/report.h"

namespace global_ipam {

using ipam::PoolConfig;

int cli_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
             std::ostream& err) {
  CLI::App app{
      "global-ipam: the cluster-wide IPAM of Strait. Without arguments it speaks the CNI "
      "protocol (CNI_COMMAND...); with a command it inspects and repairs the block table.",
      "global-ipam"};
  app.require_subcommand(1);
  std::string config_file;
  std::string store_path;
  std::vector<std::string> endpoints;
  std::string prefix = ipam::kDefaultEtcdPrefix;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  int timeout_ms = ipam::kDefaultStoreTimeoutMs;
  bool as_json = false;
  app.add_option("--config", config_file,
                 "A CNI config (.conf, .conflist) or global-ipam ipam object: its store and pools");
  app.add_option("--store-path", store_path, "The file store's directory");
  app.add_option("--etcd-endpoints", endpoints, "etcd endpoints (http:// or https:// URLs)")
      ->delimiter(',');
  app.add_option("--etcd-prefix", prefix, "Key prefix in etcd")->capture_default_str();
  app.add_option("--ca-file", ca_file, "CA for https etcd endpoints");
  app.add_option("--cert-file", cert_file, "TLS client certificate for etcd");
  app.add_option("--key-file", key_file, "TLS client key for etcd");
  app.add_option("--timeout-ms", timeout_ms, "Store timeout")->capture_default_str();
  app.add_flag("--json", as_json, "Print JSON instead of tables");

  bool with_blocks = false;
  std::string node;
  auto* show = app.add_subcommand("show", "Pools and blocks: affinity, used and free addresses");
  show->add_flag("--blocks", with_blocks, "List every block");
  show->add_option("--node", node, "Only this node's blocks");
  app.add_subcommand("nodes", "Node records (underlay address, attributes) and their blocks");
  std::string valid_file;
  auto* check = app.add_subcommand(
      "check",
      "Report allocations without handle records (or, with --valid, whose attachment "
      "is not valid), blocks without an owner, leftovers of interrupted writes");
  check->add_option("--valid", valid_file,
                    "JSON list of valid attachments {containerID, ifname[, network]}");
  std::string handle;
  auto* release = app.add_subcommand("release", "Release every address of one handle");
  release->add_option("--handle", handle, "NETWORK/CONTAINERID/IFNAME")->required();
  std::string network;
  bool dry_run = false;
  std::string live_nodes_file;
  bool dead_without_record = false;
  int64_t grace_s = 900;
  auto* gc = app.add_subcommand(
      "gc",
      "Release every allocation whose attachment is not valid (--valid), or what nodes that no "
      "longer exist hold (--live-nodes, --dead-without-record: found gone twice, --grace apart)");
  gc->add_option("--valid", valid_file, "JSON list of valid attachments");
  gc->add_option("--node", node, "With --valid: only allocations of this node");
  gc->add_option("--network", network, "With --valid: only this network");
  auto* live = gc->add_option("--live-nodes", live_nodes_file,
                              "JSON list of the nodes that exist (or `kubectl get nodes -o json`): "
                              "the others are collected");
  gc->add_flag("--dead-without-record", dead_without_record,
               "Collect the nodes whose node record is gone")
      ->excludes(live);
  gc->add_option("--grace", grace_s,
                 "Seconds a node must stay gone between the two observations that collect it")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  gc->add_flag("--dry-run", dry_run, "Only print what would be released");
  std::string set_name;
  std::string address;
  std::vector<std::string> attrs;
  auto* set_node = app.add_subcommand("set-node", "Create or update a node record");
  set_node->add_option("name", set_name, "Node name")->required();
  set_node->add_option("--address", address, "Underlay address");
  set_node->add_option("--attr", attrs, "KEY=VALUE (an empty VALUE removes KEY); repeatable");

  try {
    // CLI11 takes the arguments without the program name, last one first.
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : 1;
  }

  try {
    std::vector<PoolConfig> pools;
    ipam::StoreConfig sc;
    if (!config_file.empty()) {
      auto cfg = ipam::parse_global_ipam(
          cli::ipam_object(cli::read_json_file(config_file), config_file), "ipam", env);
      pools = cfg.pools;
      sc = cfg.store;
    }
    if (!store_path.empty()) {
      sc.type = ipam::StoreConfig::Type::kFile;
      sc.path = store_path;
    }
    if (!endpoints.empty()) {
      sc.type = ipam::StoreConfig::Type::kEtcd;
      sc.endpoints = endpoints;
      sc.prefix = prefix;
      sc.ca_file = ca_file;
      sc.cert_file = cert_file;
      sc.key_file = key_file;
    }
    if (app.count("--timeout-ms") || config_file.empty()) sc.timeout_ms = timeout_ms;
    auto store = ipam::open_global_store(sc);
    const std::string verb = app.get_subcommands().front()->get_name();
    if (verb == "show") return cli::show(*store, pools, with_blocks, node, as_json, out);
    if (verb == "nodes") return cli::nodes(*store, as_json, out);
    if (verb == "check") {
      std::optional<std::vector<cli::ValidAttachment>> valid;
      if (!valid_file.empty()) valid = cli::read_valid(valid_file);
      return cli::check(*store, pools, valid, as_json, out);
    }
    if (verb == "release") return cli::release(*store, handle, as_json, out, err);
    if (verb == "gc") {
      bool dead_nodes = !live_nodes_file.empty() || dead_without_record;
      if (valid_file.empty() && !dead_nodes) {
        err << "global-ipam: gc needs --valid, --live-nodes or --dead-without-record\n";
        return 1;
      }
      int rc = 0;
      if (!valid_file.empty()) {
        rc |=
            cli::gc(*store, cli::read_valid(valid_file), node, network, dry_run, as_json, out, err);
      }
      if (dead_nodes) {
        std::set<std::string> live_set;
        if (!live_nodes_file.empty()) live_set = cli::read_node_list(live_nodes_file);
        auto alive = [&](const std::string& n) {
          if (dead_without_record) return store->get(ipam::records::node_key(n)).has_value();
          return live_set.count(n) > 0;
        };
        rc |= cli::gc_dead_nodes(*store, alive, grace_s, dry_run, as_json, out, err);
      }
      return rc;
    }
    if (verb == "set-node") return cli::set_node(*store, set_name, address, attrs, as_json, out);
  } catch (const cni::Error& e) {
    err << "global-ipam: " << e.msg() << (e.details().empty() ? "" : "; " + e.details()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "global-ipam: " << e.what() << "\n";
    return 1;
  }
  return 1;
}

}  // namespace global_ipam
