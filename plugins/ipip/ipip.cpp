#include "plugins/ipip/ipip.h"

#include <memory>

#include "plugins/ipip/ipip_config.h"
#include "plugins/ipip/ipip_tunnel.h"

namespace ipip {

const overlay::OverlayPlugin& overlay_plugin() {
  static const overlay::OverlayPlugin p{
      "ipip",
      "Strait ipip CNI plugin (spec 0.3.0 - 1.1.0); `ipip sync --help` for the agent",
      {"ipip", "ipp", 0},
      kOverhead,
      [](const cni::NetConf& conf, const cni::EnvMap& environ) {
        return std::make_unique<overlay::ParsedConfig<IpipConfig, IpipTunnel>>(
            parse_config(conf, environ));
      }};
  return p;
}

cni::Plugin plugin() { return overlay::make_plugin(overlay_plugin()); }

}  // namespace ipip
