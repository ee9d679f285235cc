#include "plugins/vxlan/vxlan.h"

#include <memory>

#include "plugins/vxlan/vxlan_config.h"
#include "plugins/vxlan/vxlan_tunnel.h"

namespace vxlan {

const overlay::OverlayPlugin& overlay_plugin() {
  static const overlay::OverlayPlugin p{
      "vxlan",
      "Strait vxlan CNI plugin (spec 0.3.0 - 1.1.0); `vxlan sync --help` for the agent",
      {"vx", "vxp", 0},
      kOverhead,
      [](const cni::NetConf& conf, const cni::EnvMap& environ) {
        return std::make_unique<overlay::ParsedConfig<VxlanConfig, VxlanTunnel>>(
            parse_config(conf, environ));
      }};
  return p;
}

cni::Plugin plugin() { return overlay::make_plugin(overlay_plugin()); }

}  // namespace vxlan
