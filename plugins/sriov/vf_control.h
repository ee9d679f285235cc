#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/vf.h"

// The seam between the plugin and a PF's VF settings. On a node it is netlink (libcni's
// vf.h, through the PF in the host netns); the main-phase tests, on a kernel without a PF,
// hand the plugin a fake that keeps and records the settings (test/support/fake_vf_control.h),
// while the VM suite runs the netlink one against netdevsim.
namespace sriov {

class VfControl {
 public:
  virtual ~VfControl() = default;
  // VF `vf` of the PF netdev `pf`; nullopt when there is no such VF (or no such PF).
  virtual std::optional<cni::VfInfo> get(const std::string& pf, int vf) = 0;
  // Throws what the driver says (cni::NetlinkError naming the setting).
  virtual void set(const std::string& pf, int vf, const cni::VfSettings& settings) = 0;
};

// Makes the VfControl of one invocation; `sysfs_root` is the config's (a fake PF keeps its
// state there).
using VfControlFactory = std::function<std::unique_ptr<VfControl>(const std::string& sysfs_root)>;

// Through netlink in the netns it is made in (the host's).
class NetlinkVfControl : public VfControl {
 public:
  std::optional<cni::VfInfo> get(const std::string& pf, int vf) override;
  void set(const std::string& pf, int vf, const cni::VfSettings& settings) override;

 private:
  cni::NlSocket sock_;
};

VfControlFactory netlink_vf_control();

}  // namespace sriov
