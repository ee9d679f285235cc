#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ipam/global/records.h"
#include "ipam/global/store.h"

// Node records of the cluster-wide IPAM: where the overlays (ipip, vxlan) look up the
// underlay address (and VTEP MAC) of the node that owns a block.
namespace ipam::nodes {

std::optional<records::NodeRecord> get(KvStore& store, const std::string& name);
// Every node record, by name.
std::vector<records::NodeRecord> list(KvStore& store);
// Creates or updates the record of `node.name`: the address replaces the stored one when
// set, and the attributes are merged (an empty value removes an attribute). A
// compare-and-swap loop, so concurrent updates of different attributes both land. Returns
// the record as stored.
records::NodeRecord put(KvStore& store, const records::NodeRecord& node);
// Removes the record (not the node's blocks); false when there was none.
bool remove(KvStore& store, const std::string& name);

}  // namespace ipam::nodes
