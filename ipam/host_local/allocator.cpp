#include "ipam/host_local/allocator.h"

#include "libcni/core/error.h"

namespace ipam {

using cni::IpAddress;

cni::IpConfig Allocator::ip_config(const Range& range, const IpAddress& ip) {
  cni::IpConfig c;
  c.address = cni::IpNet{ip, range.subnet.prefix};
  c.gateway = range.gateway;
  return c;
}

cni::IpConfig Allocator::allocate(const LeaseOwner& owner,
                                  const std::optional<IpAddress>& requested) {
  // SPEC (ADD): a container gets one address per range set; a second ADD for the same
  // attachment without DEL is refused, not answered with the old address (upstream does
  // the same).
  for (const auto& l : store_.find(owner.container_id, owner.ifname)) {
    if (set_.contains(l.ip)) {
      throw cni::Error(kErrDuplicate, l.ip.str() + " has been allocated to " + owner.container_id +
                                          "/" + owner.ifname +
                                          ", duplicate allocation is not allowed");
    }
  }

  if (requested) {
    const Range* r = set_.range_for(*requested);
    if (!r) {
      throw cni::Error(kErrAddressUnavailable, "requested IP address " + requested->str() +
                                                   " is not in range set " + set_.str());
    }
    if (*requested == r->gateway) {
      throw cni::Error(kErrAddressUnavailable,
                       "requested ip " + requested->str() + " is subnet's gateway");
    }
    if (!store_.reserve(*requested, owner, index_)) {
      throw cni::Error(kErrAddressUnavailable, "requested IP address " + requested->str() +
                                                   " is not available in range set " + set_.str());
    }
    return ip_config(*r, *requested);
  }

  RangeIterator it(set_, store_.last_reserved(index_));
  while (auto c = it.next()) {
    if (store_.reserve(c->ip, owner, index_)) return ip_config(*c->range, c->ip);
  }
  throw cni::Error(kErrNoAddress, "no IP addresses available in range set: " + set_.str());
}

std::vector<Lease> owner_leases(LeaseStore& store, const std::string& container_id,
                                const std::string& ifname) {
  std::vector<Lease> exact;
  std::vector<Lease> legacy;
  for (auto& l : store.find(container_id, ifname)) {
    if (l.owner.ifname == ifname) {
      exact.push_back(std::move(l));
    } else if (l.owner.legacy()) {
      legacy.push_back(std::move(l));
    }
  }
  // Upstream matches "<id>\r\n<ifname>" first and falls back to "<id>" only when nothing
  // matched: a legacy lease survives the DEL of an interface that has leases of its own.
  return exact.empty() ? legacy : exact;
}

std::vector<IpAddress> release_owner(LeaseStore& store, const std::string& container_id,
                                     const std::string& ifname) {
  std::vector<IpAddress> released;
  for (const auto& l : owner_leases(store, container_id, ifname)) {
    store.release(l.ip);
    released.push_back(l.ip);
  }
  return released;
}

}  // namespace ipam
