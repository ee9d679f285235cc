#include "plugins/sriov/vf_control.h"

#include <cerrno>

namespace sriov {

std::optional<cni::VfInfo> NetlinkVfControl::get(const std::string& pf, int vf) {
  try {
    return cni::find_vf(sock_, pf, vf);
  } catch (const cni::NetlinkError& e) {
    if (e.sys_errno() == ENODEV) return std::nullopt;
    throw;
  }
}

void NetlinkVfControl::set(const std::string& pf, int vf, const cni::VfSettings& settings) {
  cni::set_vf(sock_, pf, vf, settings);
}

VfControlFactory netlink_vf_control() {
  return [](const std::string&) { return std::make_unique<NetlinkVfControl>(); };
}

}  // namespace sriov
