#include "plugins/global-ipam/operator_files.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "libcni/core/read_file.h"

namespace global_ipam::cli {

using nlohmann::json;

json read_json_file(const std::string& path) {
  const auto text = cni::read_whole_file(path);
  if (!text) throw std::runtime_error("cannot read \"" + path + "\": " + std::strerror(errno));
  try {
    return json::parse(*text);
  } catch (const json::exception& e) {
    throw std::runtime_error("\"" + path + "\" is not JSON: " + e.what());
  }
}

json ipam_object(const json& j, const std::string& path) {
  auto is_ours = [](const json& ipam) {
    return ipam.is_object() && ipam.value("type", "") == "global-ipam";
  };
  if (j.contains("plugins") && j["plugins"].is_array()) {
    for (const auto& p : j["plugins"]) {
      if (p.contains("ipam") && is_ours(p["ipam"])) return p["ipam"];
    }
  }
  if (j.contains("ipam") && is_ours(j["ipam"])) return j["ipam"];
  if (j.contains("pools") || j.contains("store")) return j;
  throw std::runtime_error("\"" + path + "\" holds no global-ipam config");
}

std::vector<ValidAttachment> read_valid(const std::string& path) {
  json j = read_json_file(path);
  const json* list = &j;
  if (j.is_object()) {
    for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
      if (j.contains(key)) {
        list = &j[key];
        break;
      }
    }
  }
  if (!list->is_array()) {
    throw std::runtime_error("\"" + path +
                             "\": expected a list of {containerID, ifname[, network]} or an "
                             "object with cni.dev/valid-attachments");
  }
  std::vector<ValidAttachment> out;
  for (const auto& a : *list) {
    if (!a.is_object() || !a.contains("containerID") || !a.contains("ifname")) {
      throw std::runtime_error("\"" + path + "\": entry " + a.dump() +
                               " needs containerID and ifname");
    }
    out.push_back(ValidAttachment{a.value("network", ""), a["containerID"].get<std::string>(),
                                  a["ifname"].get<std::string>()});
  }
  return out;
}

bool is_valid(const std::vector<ValidAttachment>& valid, const ipam::records::Handle& h) {
  return std::any_of(valid.begin(), valid.end(), [&](const ValidAttachment& v) {
    return v.container_id == h.container_id && v.ifname == h.ifname &&
           (v.network.empty() || v.network == h.network);
  });
}

std::set<std::string> read_node_list(const std::string& path) {
  json j = read_json_file(path);
  std::set<std::string> out;
  auto add = [&](const json& name) {
    if (!name.is_string() || name.get<std::string>().empty()) {
      throw std::runtime_error("\"" + path + "\": " + name.dump() + " is not a node name");
    }
    out.insert(name.get<std::string>());
  };
  if (j.is_array()) {
    for (const auto& n : j) add(n);
  } else if (j.is_object() && j.contains("items") && j["items"].is_array()) {
    for (const auto& item : j["items"]) {
      if (!item.is_object() || !item.contains("metadata") || !item["metadata"].contains("name")) {
        throw std::runtime_error("\"" + path + "\": item without metadata.name");
      }
      add(item["metadata"]["name"]);
    }
  } else {
    throw std::runtime_error("\"" + path +
                             "\": expected a list of node names or `kubectl get nodes -o json`");
  }
  return out;
}

}  // namespace global_ipam::cli
