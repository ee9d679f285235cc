#include "plugins/vxlan/sync.h"

#include <memory>

#include "plugins/vxlan/vxlan_config.h"
#include "plugins/vxlan/vxlan_tunnel.h"

namespace vxlan {

overlay::SyncPlugin sync_plugin() {
  return {"vxlan",
          "vxlan: the vxlan overlay of Strait. Without arguments it speaks the CNI protocol; "
          "`sync` is its route agent: neighbour, FDB and route entries for every remote node "
          "and block of global-ipam's block table.",
          [](const cni::NetConf& conf, const cni::EnvMap& env) {
            auto cfg = std::make_shared<const VxlanConfig>(parse_config(conf, env));
            overlay::TunnelFactory make = [cfg](const overlay::Underlay& u) {
              return std::make_unique<VxlanTunnel>(*cfg, u);
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

}  // namespace vxlan
