#include "overlay/sync_command.h"

#include <CLI/CLI.hpp>

#include <chrono>

#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"
#include "libcni/core/log.h"

namespace overlay {

int sync_main(const SyncPlugin& plugin, const std::vector<std::string>& args,
              const cni::EnvMap& env, std::ostream& out, std::ostream& err) {
  CLI::App app{plugin.description, plugin.name};
  app.require_subcommand(1);
  std::string config_file;
  double interval = 0;
  bool watch = false;
  std::string level = "info";
  auto* sync = app.add_subcommand("sync", "Reconcile this node's kernel with the block table");
  sync->add_option("--config", config_file,
                   "The network's .conflist (its " + plugin.name + " plugin)")
      ->required();
  sync->add_flag("--watch", watch,
                 "Follow the store (etcd's watch, inotify on the file store) and run a pass "
                 "soon after each change, until SIGTERM; a full pass still runs every "
                 "--interval (default 30 s)");
  sync->add_option("--interval", interval,
                   "Run a pass every S seconds until SIGTERM (default: one pass, or with "
                   "--watch 30)")
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
  log.set_tag(plugin.name + "[sync]");
  try {
    const cni::NetConf conf = load_plugin_config(config_file, plugin.name);
    const SyncSetup setup = plugin.setup(conf, env);
    auto store = ipam::open_global_store(setup.config->ipam.store);
    Agent agent(*setup.config, setup.overhead, setup.make_tunnel, *store, log);
    AgentOptions options;
    options.once = interval == 0 && !watch;
    options.watch = watch;
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

}  // namespace overlay
