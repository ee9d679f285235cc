#include "libcni/iface/settle.h"

#include <sys/socket.h>

#include <string>
#include <thread>

#include "libcni/core/error.h"
#include "libcni/kernel/addr.h"

namespace cni {

namespace {

constexpr std::chrono::milliseconds kSettlePoll{50};

std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace

void settle_ipv6_addresses(NlSocket& sock, const LinkInfo& link, Logger& log,
                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    bool tentative = false;
    for (const AddressState& a : list_address_states(sock, link, AF_INET6)) {
      if (a.dad_failed) {
        throw Error(kErrInternal, "IPv6 address " + a.address.ip.str() + " on \"" + link.name +
                                      "\" failed duplicate address detection: another host on "
                                      "the link uses it");
      }
      tentative = tentative || a.tentative;
    }
    if (!tentative) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      log.warning("interface \"" + link.name + "\" still has tentative IPv6 addresses after " +
                  duration_text(timeout));
      return;
    }
    std::this_thread::sleep_for(kSettlePoll);
  }
}

}  // namespace cni
