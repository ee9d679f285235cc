#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "libcni/core/ip.h"

namespace ipam {

// Who holds an address: one attachment (container ID + interface name). Leases written by
// host-local before CNI 0.7 (spec 0.4.0) carry no interface name: `ifname` is empty then,
// and such a lease belongs to every interface of the container.
struct LeaseOwner {
  std::string container_id;
  std::string ifname;
  bool legacy() const { return ifname.empty(); }
  bool operator==(const LeaseOwner&) const = default;
};

struct Lease {
  cni::IpAddress ip;
  LeaseOwner owner;
  bool operator==(const Lease&) const = default;
};

// Where leases live. An instance stands for one network and is used by one operation: an
// implementation serialises operations (the disk store holds a lock for the instance's
// lifetime), so a lookup followed by a reservation cannot race another process. This is the
// seam between the allocation logic and the backends (host-local's directory, a cluster
// store).
class LeaseStore {
 public:
  virtual ~LeaseStore() = default;

  // Records a lease of `ip` for `owner` unless the address is taken; false when taken. Also
  // remembers `ip` as the last address reserved in range set `range_set` (round robin).
  virtual bool reserve(const cni::IpAddress& ip, const LeaseOwner& owner, size_t range_set) = 0;
  // The address last reserved in `range_set`, if known.
  virtual std::optional<cni::IpAddress> last_reserved(size_t range_set) = 0;
  // Deletes the lease of `ip`; an absent lease is not an error.
  virtual void release(const cni::IpAddress& ip) = 0;
  // The leases of `container_id` held for `ifname` and its legacy leases (empty ifname), in
  // no particular order. Must not cost more with more leases in the store.
  virtual std::vector<Lease> find(const std::string& container_id, const std::string& ifname) = 0;
  // Every lease (GC).
  virtual std::vector<Lease> list() = 0;
  // Every leased address, owners not needed (STATUS): may be cheaper than list().
  virtual std::vector<cni::IpAddress> addresses() = 0;
};

}  // namespace ipam
