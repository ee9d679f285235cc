#include "plugins/ipip/sync.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <memory>

#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "overlay/agent.h"
#include "plugins/ipip/ipip_config.h"
#include "plugins/ipip/ipip_tunnel.h"

namespace ipip {

int sync_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
              std::ostream& err) {
  CLI::App app{
      "ipip: the ipip overlay of Strait (tunl0). Without arguments it speaks the CNI protocol; "
      "`sync` is its route agent: a route for every remote block of global-ipam's block table, "
      "through tunl0 or (crossSubnet) directly.",
      "ipip"};
  app.require_subcommand(1);
  std::string config_file;
  double interval = 0;
  std::string level = "info";
  auto* sync = app.add_subcommand("sync", "Reconcile this node's kernel with the block table");
  sync->add_option("--config", config_file, "The network's .conflist (its ipip plugin)")
      ->required();
  sync->add_option("--interval", interval,
                   "Run a pass every S seconds until SIGTERM (default: one pass)")
      ->check(CLI::Range(0.1, 86400.0));
  sync->add_option("--log-level", level, "error, warning, info, debug")->capture_default_str();

  try {
    // CLI11 takes the arguments without the program name, last one first.
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : 1;
  }

  cni::Logger log(err, cni::Logger::Level::kInfo);
  log.set_level(level);
  log.set_tag("ipip[sync]");
  try {
    const cni::NetConf conf = overlay::load_plugin_config(config_file, "ipip");
    const IpipConfig cfg = parse_config(conf, env);
    auto store = ipam::open_global_store(cfg.overlay.ipam.store);
    overlay::TunnelFactory make = [&cfg](const overlay::Underlay& u) {
      return std::make_unique<IpipTunnel>(cfg, u);
    };
    overlay::Agent agent(cfg.overlay, kOverhead, make, *store, log);
    overlay::AgentOptions options;
    options.once = interval == 0;
    if (interval > 0) {
      options.interval = std::chrono::milliseconds(static_cast<int64_t>(interval * 1000));
    }
    return agent.run(options);
  } catch (const cni::Error& e) {
    log.error(e.msg());
    return 1;
  } catch (const std::exception& e) {
    log.error(e.what());
    return 1;
  }
}

}  // namespace ipip
