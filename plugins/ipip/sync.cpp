#include "plugins/ipip/sync.h"

#include <memory>

#include "plugins/ipip/ipip_config.h"
#include "plugins/ipip/ipip_tunnel.h"

namespace ipip {

overlay::SyncPlugin sync_plugin() {
  return {"ipip",
          "ipip: the ipip overlay of Strait (tunl0). Without arguments it speaks the CNI "
          "protocol; `sync` is its route agent: a route for every remote block of global-ipam's "
          "block table, through tunl0 or (crossSubnet) directly over the underlay.",
          [](const cni::NetConf& conf, const cni::EnvMap& env) {
            auto cfg = std::make_shared<const IpipConfig>(parse_config(conf, env));
            overlay::TunnelFactory make = [cfg](const overlay::Underlay& u) {
              return std::make_unique<IpipTunnel>(*cfg, u);
            };
            return overlay::SyncSetup{
                std::shared_ptr<const overlay::OverlayConfig>(cfg, &cfg->overlay), kOverhead,
                std::move(make)};
          }};
}

int sync_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
              std::ostream& err) {
  return overlay::sync_main(sync_plugin(), args, env, out, err);
}

}  // namespace ipip
