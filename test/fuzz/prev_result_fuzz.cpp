#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "test/fuzz/fuzz_check.h"

// prevResult inside a config: the first byte picks the config's cniVersion, the rest is the
// prevResult (any JSON), which is parsed and converted to the config's version.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& versions = cni::supported_versions();
  const std::string& version = versions[data[0] % versions.size()];
  nlohmann::json prev = nlohmann::json::parse(data + 1, data + size, nullptr, false);
  if (prev.is_discarded()) return 0;
  nlohmann::json conf = {
      {"cniVersion", version}, {"name", "fuzz"}, {"type", "macvlan"}, {"prevResult", prev}};
  strait::fuzz::expect_only_cni_errors([&] { (void)cni::netconf_from_json(conf, versions); });
  return 0;
}
