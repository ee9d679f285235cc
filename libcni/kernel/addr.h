#pragma once

#include <sys/socket.h>

#include <optional>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"

// Interface addresses over RTM_*ADDR.
namespace cni {

struct AddressOptions {
  bool nodad = false;              // IFA_F_NODAD: IPv6 usable at once, no duplicate detection
  bool noprefixroute = false;      // IFA_F_NOPREFIXROUTE: no automatic subnet route
  bool replace = false;            // NLM_F_REPLACE instead of failing with EEXIST
  std::optional<uint8_t> scope{};  // RT_SCOPE_*; unset: universe
};

// Adds `addr` (host bits kept: 10.1.0.5/24) to the link. IPv4 addresses shorter than /31
// get the subnet's broadcast address, as upstream's netlink library does. Throws
// NetlinkError `failed to add address 10.1.0.5/24 to link "eth0": File exists`.
void add_address(NlSocket& sock, const LinkRef& link, const IpNet& addr,
                 const AddressOptions& options = {});
// EADDRNOTAVAIL when the link does not have it.
void delete_address(NlSocket& sock, const LinkRef& link, const IpNet& addr);
// The link's addresses of `family` (AF_INET, AF_INET6, AF_UNSPEC for both) in the kernel's
// order, IPv6 link-local ones included.
std::vector<IpNet> list_addresses(NlSocket& sock, const LinkRef& link, int family = AF_UNSPEC);

// An address with the states of its IFA_F_* flags a plugin waits on or fails for.
struct AddressState {
  IpNet address{};
  bool tentative = false;   // IFA_F_TENTATIVE: IPv6 duplicate address detection still runs
  bool dad_failed = false;  // IFA_F_DADFAILED: another host on the link answered for it
  uint8_t scope = 0;        // RT_SCOPE_*
};
// list_addresses with the states, from the same dump (libnl's address cache).
std::vector<AddressState> list_address_states(NlSocket& sock, const LinkRef& link,
                                              int family = AF_UNSPEC);

}  // namespace cni
