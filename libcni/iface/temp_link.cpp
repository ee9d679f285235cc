#include "libcni/iface/temp_link.h"

#include <stdexcept>

#include "libcni/core/hash.h"
#include "libcni/kernel/link.h"

namespace cni {

namespace {
constexpr size_t kMaxIfnameLen = 15;  // IFNAMSIZ - 1
constexpr size_t kMinDigits = 4;
}  // namespace

std::string temp_link_name(std::string_view prefix, const Env& env) {
  if (prefix.size() + kMinDigits > kMaxIfnameLen) {
    throw std::invalid_argument("temporary link name prefix \"" + std::string(prefix) +
                                "\" leaves fewer than 4 hex digits");
  }
  return hashed_name(prefix, {env.container_id, env.ifname},
                     static_cast<int>(kMaxIfnameLen - prefix.size()));
}

bool delete_leftover_link(NlSocket& sock, const std::string& name, std::string_view kind,
                          std::string_view where, Logger& log) {
  auto leftover = find_link(sock, name);
  if (!leftover || leftover->kind != kind) return false;
  log.info("deleting " + name + " in " + std::string(where) +
           ", left by an ADD that did not finish");
  return delete_link_if_exists(sock, leftover->index);
}

}  // namespace cni
