#pragma once

#include <chrono>

#include "libcni/core/log.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

// Waiting for IPv6 duplicate address detection (DAD) on a freshly configured interface, as
// upstream's ip.SettleAddresses does: an address is unusable (and its unsolicited NA unsent)
// while it is tentative. configure_interface (configure.h) calls it; so will any plugin that
// configures addresses itself.
namespace cni {

// Upstream waits this long (pkg/ipam ConfigureIface -> ip.SettleAddresses(ifName, 10)).
inline constexpr std::chrono::milliseconds kSettleTimeout{10000};

// Polls the addresses of `link` through `sock` (bound to the link's netns) until none of its
// IPv6 addresses, link-local ones included, is tentative. A failed DAD throws
// Error{kErrInternal} naming the address and the interface (another host uses it); running
// out of `timeout` only logs a warning, as upstream ignores it.
void settle_ipv6_addresses(NlSocket& sock, const LinkInfo& link, Logger& log,
                           std::chrono::milliseconds timeout = kSettleTimeout);

}  // namespace cni
