#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "overlay/agent.h"
#include "overlay/config.h"

// `<plugin> sync --config <conflist> [--watch] [--interval S] [--log-level L]`: the route agent
// command of every overlay plugin (vxlan, ipip), one CLI over overlay::Agent. A plugin names
// itself and hands over a hook that turns its object of the conflist into what the agent runs.
namespace overlay {

// What a plugin's config gives the agent. `config` may alias a larger plugin config (the
// aliasing constructor of shared_ptr) that `make_tunnel` also holds: it lives as long as both.
struct SyncSetup {
  std::shared_ptr<const OverlayConfig> config;
  Overhead overhead;
  TunnelFactory make_tunnel;
};

struct SyncPlugin {
  std::string name;         // the executable, the plugin `type` in the conflist, the log tag
  std::string description;  // the help text's first paragraph
  // Parses the plugin's NetConf (from the conflist, with its name and cniVersion); throws
  // cni::Error for a bad config.
  std::function<SyncSetup(const cni::NetConf&, const cni::EnvMap&)> setup;
};

// Parses `args` (without the program name), runs the agent and returns the exit code: 0 after
// a successful single pass or a clean stop (SIGTERM, SIGINT), 1 when the config, the store or
// a single pass failed, and CLI11's code for --help (0) and usage faults (1).
int sync_main(const SyncPlugin& plugin, const std::vector<std::string>& args,
              const cni::EnvMap& env, std::ostream& out, std::ostream& err);

}  // namespace overlay
