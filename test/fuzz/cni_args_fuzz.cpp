#include <cstddef>
#include <cstdint>
#include <string>

#include "libcni/protocol/env.h"
#include "test/fuzz/fuzz_check.h"

// CNI_ARGS, and the rest of the CNI_* environment around it.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  strait::fuzz::expect_only_cni_errors([&] { (void)cni::parse_cni_args(text); });
  // The same bytes as the ifname and the container id of an otherwise valid environment.
  strait::fuzz::expect_only_cni_errors([&] {
    cni::EnvMap env = {{"CNI_COMMAND", "ADD"},        {"CNI_PATH", "/opt/cni/bin"},
                       {"CNI_NETNS", "/run/netns/x"}, {"CNI_CONTAINERID", text},
                       {"CNI_IFNAME", "net1"},        {"CNI_ARGS", text}};
    (void)cni::parse_env(env);
  });
  strait::fuzz::expect_only_cni_errors([&] {
    cni::EnvMap env = {{"CNI_COMMAND", "DEL"},
                       {"CNI_PATH", text},
                       {"CNI_CONTAINERID", "c1"},
                       {"CNI_IFNAME", text}};
    cni::Env e = cni::parse_env(env);
    if (e.ifname.size() > 15 || e.ifname.find('/') != std::string::npos) std::abort();
  });
  return 0;
}
