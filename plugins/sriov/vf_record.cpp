#include "plugins/sriov/vf_record.h"

#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "libcni/core/state_file.h"
#include "libcni/kernel/sysfs.h"

namespace sriov {

namespace {

using nlohmann::json;

json settings_to_json(const cni::VfSettings& s) {
  json j = json::object();
  if (s.mac) j["mac"] = s.mac->str();
  if (s.vlan) j["vlan"] = {{"vlan", s.vlan->vlan}, {"qos", s.vlan->qos}, {"proto", s.vlan->proto}};
  if (s.rate) j["rate"] = {{"min", s.rate->min_tx_rate}, {"max", s.rate->max_tx_rate}};
  if (s.spoofchk) j["spoofchk"] = *s.spoofchk;
  if (s.trust) j["trust"] = *s.trust;
  if (s.link_state) j["linkState"] = std::string(cni::to_string(*s.link_state));
  return j;
}

cni::VfLinkState link_state_from(const json& j) {
  auto state = cni::parse_vf_link_state(j.get<std::string>());
  if (!state) throw std::runtime_error("unknown link state " + j.dump());
  return *state;
}

cni::VfSettings settings_from_json(const json& j) {
  cni::VfSettings s;
  if (j.contains("mac")) s.mac = cni::MacAddress::parse(j.at("mac").get<std::string>());
  if (j.contains("vlan")) {
    const json& v = j.at("vlan");
    s.vlan =
        cni::VfVlan{v.at("vlan").get<int>(), v.at("qos").get<int>(), v.at("proto").get<uint16_t>()};
  }
  if (j.contains("rate")) {
    s.rate =
        cni::VfRate{j.at("rate").at("min").get<uint32_t>(), j.at("rate").at("max").get<uint32_t>()};
  }
  if (j.contains("spoofchk")) s.spoofchk = j.at("spoofchk").get<bool>();
  if (j.contains("trust")) s.trust = j.at("trust").get<bool>();
  if (j.contains("linkState")) s.link_state = link_state_from(j.at("linkState"));
  return s;
}

json optional_bool(const std::optional<bool>& b) { return b ? json(*b) : json(nullptr); }

std::optional<bool> optional_bool_from(const json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<bool>();
}

}  // namespace

json vf_info_to_json(const cni::VfInfo& v) {
  return {{"index", v.index},
          {"mac", v.mac.str()},
          {"vlan", v.vlan},
          {"qos", v.qos},
          {"vlanProto", v.vlan_proto},
          {"spoofchk", optional_bool(v.spoofchk)},
          {"trust", optional_bool(v.trust)},
          {"minTxRate", v.min_tx_rate},
          {"maxTxRate", v.max_tx_rate},
          {"linkState", std::string(cni::to_string(v.link_state))}};
}

cni::VfInfo vf_info_from_json(const json& j) {
  cni::VfInfo v;
  v.index = j.at("index").get<int>();
  v.mac = cni::MacAddress::parse(j.at("mac").get<std::string>());
  v.vlan = j.at("vlan").get<int>();
  v.qos = j.at("qos").get<int>();
  v.vlan_proto = j.at("vlanProto").get<uint16_t>();
  v.spoofchk = optional_bool_from(j.at("spoofchk"));
  v.trust = optional_bool_from(j.at("trust"));
  v.min_tx_rate = j.at("minTxRate").get<uint32_t>();
  v.max_tx_rate = j.at("maxTxRate").get<uint32_t>();
  v.link_state = link_state_from(j.at("linkState"));
  return v;
}

std::string VfRecord::owner() const {
  if (container_id.empty())
    return "an unknown owner (a record without one, netns \"" + netns + "\")";
  return "container \"" + container_id + "\", ifname \"" + ifname + "\" (netns \"" + netns + "\")";
}

json record_to_json(const VfRecord& r) {
  return {{"format", "strait-sriov/1"},
          {"deviceID", r.device_id},
          {"containerID", r.container_id},
          {"ifname", r.ifname},
          {"netns", r.netns},
          {"netnsInode", r.netns_inode},
          {"pf", r.pf},
          {"vf", r.vf_index},
          {"dpdk", r.dpdk},
          {"tempName", r.temp_name},
          {"saved",
           {{"vf", vf_info_to_json(r.saved.vf)},
            {"hostName", r.saved.host_name},
            {"mac", r.saved.mac},
            {"mtu", r.saved.mtu},
            {"up", r.saved.up}}},
          {"applied", settings_to_json(r.applied)}};
}

VfRecord record_from_json(const json& j) {
  try {
    if (j.value("format", "") != "strait-sriov/1") {
      throw std::runtime_error("not a record of this plugin (format " +
                               j.value("format", json("none")).dump() + ")");
    }
    VfRecord r;
    r.device_id = j.at("deviceID").get<std::string>();
    r.container_id = j.at("containerID").get<std::string>();
    r.ifname = j.at("ifname").get<std::string>();
    r.netns = j.at("netns").get<std::string>();
    r.netns_inode = j.at("netnsInode").get<uint64_t>();
    r.pf = j.at("pf").get<std::string>();
    r.vf_index = j.at("vf").get<int>();
    r.dpdk = j.at("dpdk").get<bool>();
    r.temp_name = j.at("tempName").get<std::string>();
    const json& s = j.at("saved");
    r.saved.vf = vf_info_from_json(s.at("vf"));
    r.saved.host_name = s.at("hostName").get<std::string>();
    r.saved.mac = s.at("mac").get<std::string>();
    r.saved.mtu = s.at("mtu").get<int>();
    r.saved.up = s.at("up").get<bool>();
    r.applied = settings_from_json(j.at("applied"));
    return r;
  } catch (const json::exception& e) {
    throw std::runtime_error(e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
}

// ---- StateDir ----

std::string StateDir::record_path(const std::string& device_id) const {
  return dir_ + "/pci/" + device_id;
}

std::string StateDir::index_path(const std::string& container_id, const std::string& ifname) const {
  return dir_ + "/" + container_id + "-" + ifname;
}

std::string StateDir::lock_path(const std::string& device_id) const {
  return dir_ + "/pci/vf_lock/" + device_id + ".lock";
}

cni::FileLock StateDir::lock(const std::string& device_id,
                             std::chrono::milliseconds timeout) const {
  return cni::FileLock::acquire(lock_path(device_id), timeout);
}

std::optional<VfRecord> StateDir::load_record(const std::string& device_id) const {
  const std::string path = record_path(device_id);
  auto text = cni::read_state_file(path);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // sriov-cni writes the holder's netns path and nothing else (pkg/utils/pci_allocator.go).
    if (!text->empty() && text->front() == '/' && text->find('\n') == std::string::npos) {
      VfRecord r;
      r.device_id = device_id;
      r.netns = *text;
      return r;
    }
    throw std::runtime_error("\"" + path + "\" is not a VF record");
  }
  try {
    return record_from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error("\"" + path + "\" is not a VF record: " + e.what());
  }
}

void StateDir::store_record(const VfRecord& r) const {
  cni::write_state_file(record_path(r.device_id), record_to_json(r).dump(2) + "\n");
}

void StateDir::remove_record(const std::string& device_id) const {
  cni::remove_state_file(record_path(device_id));
}

std::vector<std::string> StateDir::record_addresses() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/pci", ec)) {
    std::string name = e.path().filename().string();
    if (cni::is_pci_address(name)) out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<IndexEntry> StateDir::load_index(const std::string& container_id,
                                               const std::string& ifname) const {
  auto text = cni::read_state_file(index_path(container_id, ifname));
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  // sriov-cni's cache at the same path is its NetConf, which names the VF as deviceID too.
  if (!j.is_object() || !j.contains("deviceID") || !j["deviceID"].is_string()) return std::nullopt;
  return IndexEntry{container_id, ifname, j["deviceID"].get<std::string>()};
}

void StateDir::store_index(const IndexEntry& e) const {
  json j = {{"containerID", e.container_id}, {"ifname", e.ifname}, {"deviceID", e.device_id}};
  cni::write_state_file(index_path(e.container_id, e.ifname), j.dump() + "\n");
}

void StateDir::remove_index(const std::string& container_id, const std::string& ifname) const {
  cni::remove_state_file(index_path(container_id, ifname));
}

std::vector<IndexEntry> StateDir::index_entries() const {
  std::vector<IndexEntry> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) continue;
    auto text = cni::read_state_file(e.path().string());
    if (!text) continue;
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("containerID") || !j.contains("ifname") ||
        !j.contains("deviceID")) {
      continue;
    }
    try {
      out.push_back({j["containerID"].get<std::string>(), j["ifname"].get<std::string>(),
                     j["deviceID"].get<std::string>()});
    } catch (const json::exception&) {
    }
  }
  return out;
}

}  // namespace sriov
