#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"

// `vxlan sync --config <conflist> [--interval S] [--log-level L]`: the route agent
// (overlay/agent.h) with the vxlan tunnel. Without --interval it makes one pass. (--watch
// comes with the store watch, see plugins/vxlan/README.md.)
namespace vxlan {

int sync_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
              std::ostream& err);

}  // namespace vxlan
