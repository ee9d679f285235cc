#include "test/support/fake_vf_control.h"

#include <netlink/errno.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <stdexcept>

#include "libcni/core/state_file.h"
#include "libcni/kernel/netlink.h"
#include "libcni/process/file_lock.h"
#include "plugins/sriov/vf_record.h"

namespace strait::test {

namespace {

using nlohmann::json;

// The kernel applies one VF setting at a time (rtnl); the fake's read-modify-write of its one
// file, shared by every PF and VF, takes a lock for the same (plugins on different VFs race).
cni::FileLock lock_state(const std::string& path) {
  return cni::FileLock::acquire(path + ".lock", std::chrono::seconds(30));
}

}  // namespace

json FakePfState::load() const {
  auto text = cni::read_state_file(path_);
  if (!text) return {{"pfs", json::object()}, {"refuse", json::array()}, {"calls", json::array()}};
  return json::parse(*text);
}

void FakePfState::save(const json& j) const { cni::write_state_file(path_, j.dump(1)); }

void FakePfState::add_pf(const std::string& pf, int vfs) {
  const cni::FileLock lock = lock_state(path_);  // made here, before any test looks
  json j = load();
  json list = json::array();
  for (int i = 0; i < vfs; ++i) {
    cni::VfInfo v;
    v.index = i;
    v.vlan_proto = cni::kVlanProto8021Q;
    v.spoofchk = true;
    v.trust = false;
    list.push_back(sriov::vf_info_to_json(v));
  }
  j["pfs"][pf] = list;
  save(j);
}

std::vector<cni::VfInfo> FakePfState::vfs(const std::string& pf) const {
  std::vector<cni::VfInfo> out;
  const json j = load();
  if (!j["pfs"].contains(pf)) return out;
  for (const auto& v : j["pfs"][pf]) out.push_back(sriov::vf_info_from_json(v));
  return out;
}

cni::VfInfo FakePfState::vf(const std::string& pf, int index) const {
  for (const auto& v : vfs(pf)) {
    if (v.index == index) return v;
  }
  throw std::out_of_range("fake PF " + pf + " has no VF " + std::to_string(index));
}

void FakePfState::set_vf(const std::string& pf, const cni::VfInfo& info) {
  json j = load();
  for (auto& v : j["pfs"][pf]) {
    if (v["index"] == info.index) v = sriov::vf_info_to_json(info);
  }
  save(j);
}

void FakePfState::refuse(const std::vector<std::string>& settings) {
  json j = load();
  j["refuse"] = settings;
  save(j);
}

std::vector<std::string> FakePfState::calls() const {
  return load()["calls"].get<std::vector<std::string>>();
}

void FakePfState::clear_calls() {
  json j = load();
  j["calls"] = json::array();
  save(j);
}

std::optional<cni::VfInfo> FakeVfControl::get(const std::string& pf, int vf) {
  for (const auto& v : state_.vfs(pf)) {
    if (v.index == vf) return v;
  }
  return std::nullopt;
}

void FakeVfControl::set(const std::string& pf, int vf, const cni::VfSettings& settings) {
  const cni::FileLock lock = lock_state(state_.path());
  json j = state_.load();
  const std::vector<std::string> refused = j["refuse"].get<std::vector<std::string>>();
  if (!j["pfs"].contains(pf)) {
    throw cni::NetlinkError("failed to set VF " + std::to_string(vf) + " of PF \"" + pf + "\"",
                            -NLE_NODEV, ENODEV);
  }
  json* target = nullptr;
  for (auto& v : j["pfs"][pf]) {
    if (v["index"] == vf) target = &v;
  }
  cni::VfInfo info;
  if (target) info = sriov::vf_info_from_json(*target);
  // The netlink path's requests, for their order and error texts.
  const auto requests = cni::vf_requests(pf, vf, settings);
  const auto is_refused = [&](const std::string& name) {
    return std::find(refused.begin(), refused.end(), name) != refused.end();
  };
  const std::string prefix = pf + " vf " + std::to_string(vf) + " ";
  size_t n = 0;
  auto step = [&](const char* name, const std::string& call, const std::function<void()>& apply) {
    const cni::VfRequest& r = requests.at(n++);
    if (!target) throw cni::NetlinkError(r.what, -NLE_INVAL, EINVAL);
    if (is_refused(name)) throw cni::NetlinkError(r.what, -NLE_OPNOTSUPP, EOPNOTSUPP);
    apply();
    j["calls"].push_back(prefix + call);
    *target = sriov::vf_info_to_json(info);
    // Each setting lands on its own, as each request does in the kernel.
    state_.save(j);
  };
  if (settings.vlan) {
    const cni::VfVlan v = *settings.vlan;
    step("vlan",
         "vlan " + std::to_string(v.vlan) + " qos " + std::to_string(v.qos) + " proto " +
             cni::vlan_proto_name(v.proto),
         [&] {
           info.vlan = v.vlan;
           info.qos = v.qos;
           info.vlan_proto = v.proto;
         });
  }
  if (settings.mac) step("mac", "mac " + settings.mac->str(), [&] { info.mac = *settings.mac; });
  if (settings.rate) {
    step("rate",
         "rate " + std::to_string(settings.rate->min_tx_rate) + " " +
             std::to_string(settings.rate->max_tx_rate),
         [&] {
           info.min_tx_rate = settings.rate->min_tx_rate;
           info.max_tx_rate = settings.rate->max_tx_rate;
         });
  }
  if (settings.spoofchk) {
    step("spoofchk", std::string("spoofchk ") + (*settings.spoofchk ? "on" : "off"),
         [&] { info.spoofchk = settings.spoofchk; });
  }
  if (settings.trust) {
    step("trust", std::string("trust ") + (*settings.trust ? "on" : "off"),
         [&] { info.trust = settings.trust; });
  }
  if (settings.link_state) {
    step("linkState", "state " + std::string(cni::to_string(*settings.link_state)),
         [&] { info.link_state = *settings.link_state; });
  }
}

std::string fake_pf_state_path(const std::string& sysfs_root) {
  return sysfs_root + "/strait-fake-pf.json";
}

sriov::VfControlFactory fake_vf_control() {
  return [](const std::string& sysfs_root) {
    return std::make_unique<FakeVfControl>(fake_pf_state_path(sysfs_root));
  };
}

}  // namespace strait::test
