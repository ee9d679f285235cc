#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipam/global/records.h"

// The files an operator hands the command line: a CNI config (for its store and pools) and a
// list of the attachments that really exist (for check and gc). Faults throw
// std::runtime_error naming the file.
namespace global_ipam::cli {

nlohmann::json read_json_file(const std::string& path);

// The ipam object of a config file: a .conflist's plugin whose ipam is global-ipam, a
// .conf's ipam, or the file itself when it is an ipam object.
nlohmann::json ipam_object(const nlohmann::json& j, const std::string& path);

// A valid attachment given to check/gc: an empty network matches every network.
struct ValidAttachment {
  std::string network;
  std::string container_id;
  std::string ifname;
};

// A JSON list of {containerID, ifname[, network]}, or an object with
// cni.dev/valid-attachments (or the legacy cni.dev/attachments) as a runtime sends it.
std::vector<ValidAttachment> read_valid(const std::string& path);

bool is_valid(const std::vector<ValidAttachment>& valid, const ipam::records::Handle& h);

// The nodes that exist: a JSON list of names, or `kubectl get nodes -o json` (items[].
// metadata.name).
std::set<std::string> read_node_list(const std::string& path);

}  // namespace global_ipam::cli
