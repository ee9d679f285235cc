#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/kernel/vf.h"
#include "plugins/sriov/vf_control.h"

// A PF for kernels without one: the VF settings of fake PFs live in one JSON file, so that a
// plugin the test execs and the test itself see the same VFs. Every set is appended to the
// file's "calls" (what upstream's mocked netlink records in <pf>.calls), and a setting can be
// made to fail ("refuse"), as a driver refuses what it does not support. Writes are whole
// (state_file.h), as the kernel applies a setting or not.
//
// File: {"pfs": {"<pf>": [VfInfo as JSON, ...]}, "refuse": ["trust", ...], "calls": [...]}.
namespace strait::test {

class FakePfState {
 public:
  explicit FakePfState(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // A PF with `vfs` VFs in the state a fresh driver reports (spoofchk on, trust off, auto).
  void add_pf(const std::string& pf, int vfs);
  std::vector<cni::VfInfo> vfs(const std::string& pf) const;
  cni::VfInfo vf(const std::string& pf, int index) const;
  void set_vf(const std::string& pf, const cni::VfInfo& info);
  // Settings ("vlan", "mac", "rate", "spoofchk", "trust", "linkState") to refuse with
  // EOPNOTSUPP; empty: none.
  void refuse(const std::vector<std::string>& settings);
  // One line per set: "eth0 vf 3 vlan 100 qos 0 proto 802.1Q", ...
  std::vector<std::string> calls() const;
  void clear_calls();

  nlohmann::json load() const;
  void save(const nlohmann::json& j) const;

 private:
  std::string path_;
};

// The VfControl over a FakePfState file.
class FakeVfControl : public sriov::VfControl {
 public:
  explicit FakeVfControl(std::string path) : state_(std::move(path)) {}
  std::optional<cni::VfInfo> get(const std::string& pf, int vf) override;
  void set(const std::string& pf, int vf, const cni::VfSettings& settings) override;

 private:
  FakePfState state_;
};

// The file a plugin using fake_vf_control() reads: <sysfs root>/strait-fake-pf.json, so a
// test's FakeSysfs tree carries its PFs' VF settings along.
std::string fake_pf_state_path(const std::string& sysfs_root);
sriov::VfControlFactory fake_vf_control();

}  // namespace strait::test
