#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "libcni/kernel/netlink.h"

// devlink over generic netlink: the device-wide settings of a NIC that belong to no netdev.
// Here the eswitch mode, which decides whether a PF's VFs get representor netdevs
// (representor.h): what `devlink dev eswitch set pci/0000:04:00.0 mode switchdev` does. The
// device of a netdev is found in sysfs (Sysfs::netdev_device).
namespace cni {

// A devlink instance: bus and device name, "pci/0000:04:00.0", "netdevsim/netdevsim1".
struct DevlinkHandle {
  std::string bus{};
  std::string device{};
  std::string str() const { return bus + "/" + device; }
  bool operator==(const DevlinkHandle&) const = default;
};

// DEVLINK_ESWITCH_MODE_*; the names are devlink(8)'s.
enum class EswitchMode { kLegacy, kSwitchdev };
std::optional<EswitchMode> parse_eswitch_mode(std::string_view name);  // "legacy", "switchdev"
std::string_view to_string(EswitchMode mode);

// A generic netlink socket talking to the kernel's "devlink" family, in the netns the
// constructor runs in (devlink instances belong to a netns, the initial one by default).
class Devlink {
 public:
  // Throws NetlinkError `failed to find the generic netlink family "devlink": ...` when the
  // kernel has no devlink.
  Devlink();

  // Throws NetlinkError `failed to read the eswitch mode of netdevsim/netdevsim1: ...`
  // (EOPNOTSUPP for a driver without an eswitch, ENODEV for no such instance).
  EswitchMode eswitch_mode(const DevlinkHandle& dev);
  void set_eswitch_mode(const DevlinkHandle& dev, EswitchMode mode);

 private:
  NlSocket sock_;
  int family_ = 0;
};

}  // namespace cni
