#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "ipam/errors.h"
#include "ipam/host_local/lease_store.h"
#include "ipam/range.h"
#include "libcni/protocol/result.h"

namespace ipam {

// Hands out addresses of one range set from a store (upstream's IPAllocator).
class Allocator {
 public:
  // `index` is the set's position in the config: the N of last_reserved_ip.N.
  Allocator(const RangeSet& set, LeaseStore& store, size_t index)
      : set_(set), store_(store), index_(index) {}

  // Leases an address of the set to `owner`: `requested` if given (it must be in the set,
  // not a range's gateway, and free), else the next free one round robin from the last
  // reserved. Throws cni::Error: kErrDuplicate when the owner (or a legacy lease of its
  // container) already holds an address of this set, as upstream refuses a second ADD
  // without DEL; kErrAddressUnavailable for a requested address; kErrNoAddress when the set
  // is full ("no IP addresses available in range set: 10.1.0.1-10.1.0.254").
  cni::IpConfig allocate(const LeaseOwner& owner, const std::optional<cni::IpAddress>& requested);

  // The result entry for an address of the set: its subnet's prefix and its range's gateway.
  static cni::IpConfig ip_config(const Range& range, const cni::IpAddress& ip);

 private:
  const RangeSet& set_;
  LeaseStore& store_;
  size_t index_;
};

// Releases the leases of an attachment (upstream's ReleaseByID): those recorded with
// `ifname`, or, when there are none, the container's legacy leases without an ifname.
// Returns the released addresses; an unknown attachment releases nothing.
std::vector<cni::IpAddress> release_owner(LeaseStore& store, const std::string& container_id,
                                          const std::string& ifname);

// The leases release_owner would release, in the same precedence.
std::vector<Lease> owner_leases(LeaseStore& store, const std::string& container_id,
                                const std::string& ifname);

}  // namespace ipam
