#pragma once

#include <string>
#include <string_view>

#include "libcni/protocol/netconf.h"

namespace cni::tool {

// A network configuration list as a runtime loads it from its config directory.
struct NetworkList {
  NetConfList conf;    // parsed; conf.cni_version is the effective version
  std::string bytes;   // what libcni caches as "config": the .conflist file, or for a .conf
                       // the list libcni synthesizes around it
  std::string source;  // the file it came from
};

// Finds network `name` in `dir` as libcni's LoadNetworkConf does: *.conflist files first (in
// name order), then *.conf and *.json single-plugin configs, which are wrapped into a
// one-plugin list. Unless the list sets loadOnlyInlinedPlugins, plugin objects from
// <dir>/<name>/*.conf are appended to its plugins (libcni v1.3). Files that do not parse are
// skipped (libcni aborts on the first one) and named in the not-found error. Throws
// Error{kErrInvalidConfig} when no config has that name.
NetworkList load_network_list(const std::string& dir, const std::string& name);

// Parses a list (or a single-plugin config, wrapped) held in memory.
NetworkList network_list_from_bytes(std::string_view bytes, std::string source = "");

}  // namespace cni::tool
