#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"
#include "overlay/sync_command.h"

// `ipip sync`: the shared route agent command (overlay/sync_command.h) with the ipip tunnel.
namespace ipip {

overlay::SyncPlugin sync_plugin();

int sync_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
              std::ostream& err);

}  // namespace ipip
