#include "plugins/ipip/ipip_config.h"

#include "libcni/protocol/fields.h"

namespace ipip {

IpipConfig parse_config(const cni::NetConf& conf, const cni::EnvMap& environ) {
  cni::Fields f(conf.raw, "");
  IpipConfig c;
  const std::string mode = f.str_or("ipipMode", "always");
  if (mode == "always") {
    c.mode = Mode::kAlways;
  } else if (mode == "crossSubnet") {
    c.mode = Mode::kCrossSubnet;
  } else {
    // Calico's third value, "never", is no ipip at all: that network wants another plugin.
    f.fail("ipipMode", cni::quote_value(mode) + " is not \"always\" or \"crossSubnet\"");
  }
  c.overlay = overlay::parse_overlay_config(conf, environ, "ipip");
  return c;
}

}  // namespace ipip
