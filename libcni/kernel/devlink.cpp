#include "libcni/kernel/devlink.h"

#include <linux/devlink.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/msg.h>

namespace cni {

std::optional<EswitchMode> parse_eswitch_mode(std::string_view name) {
  if (name == "legacy") return EswitchMode::kLegacy;
  if (name == "switchdev") return EswitchMode::kSwitchdev;
  return std::nullopt;
}

std::string_view to_string(EswitchMode mode) {
  return mode == EswitchMode::kSwitchdev ? "switchdev" : "legacy";
}

namespace {

uint16_t to_kernel(EswitchMode mode) {
  return mode == EswitchMode::kSwitchdev ? DEVLINK_ESWITCH_MODE_SWITCHDEV
                                         : DEVLINK_ESWITCH_MODE_LEGACY;
}

// A devlink command addressed to `dev`: the generic netlink header, then the handle.
NlMessage devlink_message(int family, uint8_t cmd, const DevlinkHandle& dev) {
  NlMessage msg(family, 0);
  genlmsghdr hdr{};
  hdr.cmd = cmd;
  hdr.version = DEVLINK_GENL_VERSION;
  msg.put_header(hdr);
  msg.put_string(DEVLINK_ATTR_BUS_NAME, dev.bus);
  msg.put_string(DEVLINK_ATTR_DEV_NAME, dev.device);
  return msg;
}

}  // namespace

Devlink::Devlink() : sock_(NETLINK_GENERIC) {
  const int id = sock_.call([](nl_sock* s) { return genl_ctrl_resolve(s, DEVLINK_GENL_NAME); });
  if (id < 0) {
    throw sock_.error("failed to find the generic netlink family \"" DEVLINK_GENL_NAME "\"", id);
  }
  family_ = id;
}

EswitchMode Devlink::eswitch_mode(const DevlinkHandle& dev) {
  NlMessage msg = devlink_message(family_, DEVLINK_CMD_ESWITCH_GET, dev);
  const std::string what = "failed to read the eswitch mode of " + dev.str();
  std::optional<uint16_t> mode;
  sock_.request(msg, what, [&](const nlmsghdr* hdr) {
    nlattr* tb[DEVLINK_ATTR_MAX + 1] = {};
    if (int rc =
            nlmsg_parse(const_cast<nlmsghdr*>(hdr), GENL_HDRLEN, tb, DEVLINK_ATTR_MAX, nullptr);
        rc < 0) {
      throw NetlinkError(what, rc);
    }
    if (tb[DEVLINK_ATTR_ESWITCH_MODE]) mode = nla_get_u16(tb[DEVLINK_ATTR_ESWITCH_MODE]);
  });
  if (!mode) throw NetlinkError(what + ": the answer has no mode", -NLE_NOATTR);
  if (*mode == DEVLINK_ESWITCH_MODE_SWITCHDEV) return EswitchMode::kSwitchdev;
  if (*mode == DEVLINK_ESWITCH_MODE_LEGACY) return EswitchMode::kLegacy;
  throw NetlinkError(what + ": unknown mode " + std::to_string(*mode), -NLE_RANGE);
}

void Devlink::set_eswitch_mode(const DevlinkHandle& dev, EswitchMode mode) {
  NlMessage msg = devlink_message(family_, DEVLINK_CMD_ESWITCH_SET, dev);
  msg.put_u16(DEVLINK_ATTR_ESWITCH_MODE, to_kernel(mode));
  sock_.request(msg, "failed to set the eswitch mode of " + dev.str() + " to " +
                         std::string(to_string(mode)));
}

}  // namespace cni
