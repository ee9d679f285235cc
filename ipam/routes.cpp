#include "ipam/routes.h"

#include <cstdint>
#include <optional>
#include <string>

namespace ipam {

std::vector<cni::Route> parse_ipam_routes(const cni::Fields& ipam) {
  std::vector<cni::Route> routes;
  const nlohmann::json* list = ipam.array("routes");
  if (!list) return routes;
  for (size_t i = 0; i < list->size(); ++i) {
    cni::Fields f((*list)[i], ipam.key_path("routes[" + std::to_string(i) + "]"));
    cni::Route r;
    auto dst = f.cidr("dst", false);
    if (!dst) f.fail("dst", "is required");
    r.dst = *dst;
    r.gw = f.ip("gw");
    auto opt_int = [&](const char* key, int64_t min, int64_t max) -> std::optional<int> {
      auto v = f.integer(key, min, max);
      if (!v) return std::nullopt;
      return static_cast<int>(*v);
    };
    r.mtu = opt_int("mtu", 0, 65535);
    r.advmss = opt_int("advmss", 0, 65535);
    r.priority = opt_int("priority", 0, INT32_MAX);
    r.table = opt_int("table", 0, INT32_MAX);
    r.scope = opt_int("scope", 0, 255);
    routes.push_back(r);
  }
  return routes;
}

}  // namespace ipam
