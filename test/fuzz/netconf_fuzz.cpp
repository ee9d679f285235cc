#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ipam/global/config.h"
#include "ipam/host_local/config.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "plugins/macvlan/macvlan_config.h"
#include "test/fuzz/fuzz_check.h"

// stdin of a plugin: the config parser, then what each executable reads from the config
// (valid attachments for GC, host-local's and global-ipam's ipam blocks with the requested
// addresses, macvlan's keys).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  strait::fuzz::expect_only_cni_errors([&] {
    cni::NetConf conf = cni::parse_netconf(text, cni::supported_versions());
    strait::fuzz::expect_only_cni_errors([&] { (void)cni::valid_attachments(conf); });
    strait::fuzz::expect_only_cni_errors([&] {
      cni::Env env;
      env.command = "ADD";
      env.container_id = "fuzz";
      env.ifname = "net1";
      (void)ipam::parse_host_local_config(conf, env);
    });
    strait::fuzz::expect_only_cni_errors([&] {
      cni::Env env;
      env.command = "ADD";
      env.container_id = "fuzz";
      env.ifname = "net1";
      ipam::GlobalConfig c = ipam::parse_global_config(conf, env, {{"K8S_NODE_NAME", "fuzz"}});
      (void)ipam::pools_of_requests(c.pools, c.requested);
    });
    strait::fuzz::expect_only_cni_errors([&] { (void)macvlan::parse_config(conf, {}); });
  });
  strait::fuzz::expect_only_cni_errors(
      [&] { (void)cni::parse_conflist(text, cni::supported_versions()); });
  return 0;
}
