#include "plugins/ipip/sync.h"

#include "plugins/ipip/ipip.h"

namespace ipip {

overlay::SyncPlugin sync_plugin() {
  return overlay::make_sync_plugin(
      overlay_plugin(),
      "ipip: the ipip overlay of Strait (tunl0). Without arguments it speaks the CNI protocol; "
      "`sync` is its route agent: a route for every remote block of global-ipam's block table, "
      "through tunl0 or (crossSubnet) directly over the underlay.");
}

int sync_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
              std::ostream& err) {
  return overlay::sync_main(sync_plugin(), args, env, out, err);
}

}  // namespace ipip
