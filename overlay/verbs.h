#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "libcni/kernel/netlink.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"
#include "overlay/config.h"
#include "overlay/pod_side.h"
#include "overlay/sync_command.h"
#include "overlay/tunnel.h"

// The CNI verbs of an overlay plugin (vxlan, ipip), the same for every tunnel: what differs
// is the config's own keys and the tunnel (overlay/tunnel.h), which an OverlayPlugin names.
namespace overlay {

// One call's parsed config: the shared keys and the tunnel they ask for.
class PluginConfig {
 public:
  virtual ~PluginConfig() = default;
  virtual const OverlayConfig& overlay() const = 0;
  // The tunnel of this config over `underlay`; both must outlive it.
  virtual std::unique_ptr<Tunnel> tunnel(const Underlay& underlay) const = 0;
};

// The PluginConfig of a plugin whose config type has an `overlay` member and whose tunnel
// is made from (config, underlay).
template <class Config, class TunnelType>
class ParsedConfig : public PluginConfig {
 public:
  explicit ParsedConfig(Config cfg) : cfg_(std::move(cfg)) {}
  const OverlayConfig& overlay() const override { return cfg_.overlay; }
  std::unique_ptr<Tunnel> tunnel(const Underlay& underlay) const override {
    return std::make_unique<TunnelType>(cfg_, underlay);
  }

 private:
  Config cfg_;
};

struct OverlayPlugin {
  std::string kind;  // "vxlan": messages, the executable's name
  std::string about;
  PodSideSpec pod_side;  // its mtu is the tunnel's, set per call
  Overhead overhead;
  // Everything that needs no kernel; cni::Error{kErrInvalidConfig} naming key and value.
  std::function<std::unique_ptr<PluginConfig>(const cni::NetConf&, const cni::EnvMap&)> parse;
};

// Node side first (under the node's setup lock: device, tunnel addresses, record), then the
// pod's veth while the IPAM ADD runs, its configuration, and the blackhole of its block. A
// failure undoes this ADD's steps; node state it made is undone too when no other ADD is in
// flight (overlay/node_guard.h). Before anything is changed, Tunnel::require_support.
cni::Result cmd_add(const OverlayPlugin& p, const cni::CmdArgs& args);
// IPAM DEL, and the host veth (with the pod end and the host routes). The device stays.
void cmd_del(const OverlayPlugin& p, const cni::CmdArgs& args);
// IPAM CHECK, the device against the config, the node record, the pod side.
void cmd_check(const OverlayPlugin& p, const cni::CmdArgs& args);
// 50 when the underlay is gone, the kernel cannot make the tunnel (require_support) or a
// device of the name is of another kind; 51 when the device exists but differs from the
// config or is down; then IPAM STATUS (the store).
void cmd_status(const OverlayPlugin& p, const cni::CmdArgs& args);
// IPAM GC, and the host veths of this network whose attachment is not valid.
void cmd_gc(const OverlayPlugin& p, const cni::CmdArgs& args,
            const std::optional<std::vector<cni::Attachment>>& valid);

// The skel plugin of `p` (its verbs above). `p` must outlive it.
cni::Plugin make_plugin(const OverlayPlugin& p);

// The route agent command's hook (overlay/sync_command.h) for `p`, from the same parse: the
// agent runs the config and tunnel the verbs do. `p` must outlive it.
SyncPlugin make_sync_plugin(const OverlayPlugin& p, std::string description);

}  // namespace overlay
