#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "ipam/global/records.h"
#include "ipam/global/store.h"
#include "plugins/global-ipam/operator_files.h"

// The operator's writes. Each returns the exit status.
namespace global_ipam::cli {

// Releases every address of one attachment, on any node.
int release(ipam::KvStore& store, const std::string& handle_id, bool as_json, std::ostream& out,
            std::ostream& err);

// Releases every allocation (of `network`, made on `node`; "" for all) whose attachment is
// not in `valid`, through the allocator's collector (BlockAllocator::collect) over every
// block. What could not be collected is printed to `err` and makes the status 1; the rest
// is collected all the same.
int gc(ipam::KvStore& store, const std::vector<ValidAttachment>& valid, const std::string& node,
       const std::string& network, bool dry_run, bool as_json, std::ostream& out,
       std::ostream& err);

// Releases what nodes that no longer exist hold (ipam/global/dead_nodes.h: the two-
// observation rule): `alive` says which exist. Prints what was marked, collected, released.
int gc_dead_nodes(ipam::KvStore& store, const std::function<bool(const std::string&)>& alive,
                  int64_t grace_s, bool dry_run, bool as_json, std::ostream& out,
                  std::ostream& err);

// Creates or updates a node record: `attrs` are KEY=VALUE (an empty VALUE removes KEY).
int set_node(ipam::KvStore& store, const std::string& name, const std::string& address,
             const std::vector<std::string>& attrs, bool as_json, std::ostream& out);

}  // namespace global_ipam::cli
