#pragma once

#include <iosfwd>

#include "libcni/process/invoke.h"
#include "libcni/protocol/env.h"

namespace cni::tool {

// The cnitool command line (see cnitool/README.md):
//   cnitool [-i IFNAME] add|check|del|status <net> <netns>
//   cnitool [-i IFNAME] gc <net> <netns> [--valid CONTAINERID[:IFNAME]]...
//   cnitool version <net>
// `env` is the process environment (NETCONFPATH, CNI_PATH, CNI_IFNAME, CNI_ARGS, CAP_ARGS,
// CNI_CACHE_DIR), passed on to the plugins; `cwd` makes a relative netns path absolute.
// Results go to `out`, messages to `err`. Returns the exit status: 0, or 1 on any failure.
int cnitool_main(int argc, const char* const* argv, const EnvMap& env, const std::string& cwd,
                 std::ostream& out, std::ostream& err, ExecRunner& exec);

}  // namespace cni::tool
