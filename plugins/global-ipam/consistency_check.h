#pragma once

#include <optional>
#include <ostream>
#include <vector>

#include "ipam/global/config.h"
#include "ipam/global/store.h"
#include "plugins/global-ipam/operator_files.h"

namespace global_ipam::cli {

// `global-ipam check`: reads the whole store and reports what does not add up, one problem
// per row (README "Command line" lists the kinds). With `valid`, allocations whose
// attachment is not listed are reported too. Returns 0 when nothing was found, else 1.
int check(ipam::KvStore& store, std::vector<ipam::PoolConfig> pools,
          const std::optional<std::vector<ValidAttachment>>& valid, bool as_json,
          std::ostream& out);

}  // namespace global_ipam::cli
