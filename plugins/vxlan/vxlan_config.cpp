#include "plugins/vxlan/vxlan_config.h"

#include <array>

#include "libcni/core/hash.h"
#include "libcni/protocol/fields.h"

namespace vxlan {

VxlanConfig parse_config(const cni::NetConf& conf, const cni::EnvMap& environ) {
  cni::Fields f(conf.raw, "");
  VxlanConfig c;
  c.vni = static_cast<uint32_t>(f.integer("vni", 1, kMaxVni).value_or(c.vni));
  c.port = static_cast<uint16_t>(f.integer("port", 1, 65535).value_or(c.port));
  c.device = f.str_or("device", kDefaultDevice);
  const std::string& d = c.device;
  if (d.empty() || d.size() > 15 || d == "." || d == ".." ||
      d.find_first_of("/: \t\n\r") != std::string::npos || d.find('\0') != std::string::npos) {
    f.fail("device", cni::quote_value(d) + " is not an interface name (1 to 15 bytes, no '/')");
  }
  c.overlay = overlay::parse_overlay_config(conf, environ, "vxlan");
  return c;
}

cni::MacAddress vtep_mac(const std::string& node, const std::string& device) {
  uint64_t h = cni::stable_hash64({"vtep", node, device});
  std::array<uint8_t, 6> b{};
  for (auto& byte : b) {
    byte = static_cast<uint8_t>(h & 0xff);
    h >>= 8;
  }
  b[0] = static_cast<uint8_t>((b[0] & 0xfc) | 0x02);  // unicast, locally administered
  return cni::MacAddress(b);
}

}  // namespace vxlan
