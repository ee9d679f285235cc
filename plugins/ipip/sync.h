#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"

// `ipip sync --config <conflist> [--interval S] [--log-level L]`: the route agent
// (overlay/agent.h) with the ipip tunnel. Without --interval it makes one pass.
namespace ipip {

int sync_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
              std::ostream& err);

}  // namespace ipip
