#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "libcni/protocol/result.h"
#include "libcni/protocol/version.h"
#include "test/fuzz/fuzz_check.h"

// A plugin's or delegate's result: parse it, print it in every version, and parse each
// printout again (what a chain does with prevResult). A result printed by us must always be
// readable by us.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  strait::fuzz::expect_only_cni_errors([&] {
    cni::Result r = cni::parse_result(j, "result");
    for (const std::string& v : cni::supported_versions()) {
      nlohmann::json out;
      try {
        out = cni::result_to_json(r, v);
      } catch (const cni::Error&) {
        continue;  // e.g. a version that cannot express this result
      }
      try {
        (void)cni::parse_result(out, "prevResult");
      } catch (const cni::Error& e) {
        std::fprintf(stderr, "result printed in %s does not parse back: %s\n%s\n", v.c_str(),
                     e.what(), out.dump().c_str());
        std::abort();
      }
    }
  });
  return 0;
}
