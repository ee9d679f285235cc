#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "ipam/global/config.h"
#include "ipam/global/store.h"

// The operator's read-only reports. Each returns the exit status.
namespace global_ipam::cli {

// Per pool: claimed and total blocks, used and usable addresses, borrowed ones; with
// `with_blocks` every block (owner, used, free, lent; with JSON each allocation); with
// `node` only that node's blocks.
int show(ipam::KvStore& store, std::vector<ipam::PoolConfig> pools, bool with_blocks,
         const std::string& node, bool as_json, std::ostream& out);

// Node records and how many blocks each node owns (owners without a record too).
int nodes(ipam::KvStore& store, bool as_json, std::ostream& out);

}  // namespace global_ipam::cli
