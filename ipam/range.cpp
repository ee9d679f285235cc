#include "ipam/range.h"

#include <netinet/in.h>

#include <limits>

namespace ipam {

namespace {

using cni::IpAddress;
using cni::IpNet;
using cni::Uint128;

constexpr Uint128 kMax = std::numeric_limits<Uint128>::max();

Uint128 add_saturating(Uint128 a, Uint128 b) { return a > kMax - b ? kMax : a + b; }

// Number of addresses in [start, end], saturating at 2^128 - 1.
Uint128 span(const IpAddress& start, const IpAddress& end) {
  return add_saturating(end - start, 1);
}

std::string family_name(int family) { return family == AF_INET ? "IPv4" : "IPv6"; }

}  // namespace

Range Range::make(const IpNet& subnet, std::optional<IpAddress> start, std::optional<IpAddress> end,
                  std::optional<IpAddress> gateway) {
  Range r;
  if (subnet.has_host_bits()) {
    throw RangeError("subnet", "\"" + subnet.str() + "\" has host bits set (network is " +
                                   subnet.network().str() + ")");
  }
  // Upstream: "Network %s too small to allocate from" for /31, /32 (/127, /128).
  if (subnet.prefix > subnet.ip.bits() - 2) {
    throw RangeError("subnet", "network " + subnet.str() + " too small to allocate from");
  }
  // Go canonicalises IPv4-mapped IPv6 to IPv4 and then rejects the subnet (IP and mask
  // length differ); addresses in ::ffff:0:0/96 would also print as IPv4 in lease names.
  if (subnet.ip.is_v6() && IpNet{IpAddress::parse("::ffff:0.0.0.0"), 96}.contains(subnet.ip)) {
    throw RangeError("subnet", "network " + subnet.str() + " is an IPv4-mapped IPv6 subnet");
  }
  r.subnet = subnet;

  auto check_inside = [&](const char* key, const IpAddress& a) {
    if (!subnet.contains(a)) {
      throw RangeError(key, a.str() + " is not in network " + subnet.str());
    }
  };
  if (gateway) {
    if (gateway->family() != subnet.ip.family()) {
      throw RangeError("gateway", gateway->str() + " is not an " + family_name(subnet.ip.family()) +
                                      " address like " + subnet.str());
    }
    r.gateway = *gateway;
  } else {
    r.gateway = subnet.ip + 1;
  }
  if (start) {
    check_inside("rangeStart", *start);
    r.start = *start;
  } else {
    r.start = subnet.ip + 1;
  }
  if (end) {
    check_inside("rangeEnd", *end);
    r.end = *end;
  } else {
    r.end = subnet.last();
    if (subnet.ip.is_v4()) r.end = r.end - 1;  // not the broadcast address
  }
  if (r.start > r.end) {
    throw RangeError(start ? "rangeStart" : "rangeEnd",
                     "rangeStart " + r.start.str() + " is after rangeEnd " + r.end.str());
  }
  return r;
}

bool Range::contains(const IpAddress& a) const {
  return a.family() == family() && start <= a && a <= end;
}

bool Range::overlaps(const Range& o) const {
  return family() == o.family() && start <= o.end && o.start <= end;
}

Uint128 Range::capacity() const {
  Uint128 n = span(start, end);
  if (contains(gateway) && n != kMax) --n;
  return n;
}

std::string Range::str() const { return start.str() + "-" + end.str(); }

RangeSet RangeSet::make(std::vector<Range> ranges) {
  if (ranges.empty()) throw RangeError("", "empty range set");
  for (size_t i = 1; i < ranges.size(); ++i) {
    std::string key = "[" + std::to_string(i) + "]";
    if (ranges[i].family() != ranges[0].family()) {
      throw RangeError(key, "mixed address families: " + ranges[i].subnet.str() + " is not " +
                                family_name(ranges[0].family()) + " like " +
                                ranges[0].subnet.str());
    }
    for (size_t j = 0; j < i; ++j) {
      if (ranges[i].overlaps(ranges[j])) {
        throw RangeError(key, "range " + ranges[i].str() + " overlaps range [" + std::to_string(j) +
                                  "] " + ranges[j].str());
      }
    }
  }
  return RangeSet{std::move(ranges)};
}

const Range* RangeSet::range_for(const IpAddress& a) const {
  for (const auto& r : ranges) {
    if (r.contains(a)) return &r;
  }
  return nullptr;
}

bool RangeSet::overlaps(const RangeSet& o) const {
  for (const auto& a : ranges) {
    for (const auto& b : o.ranges) {
      if (a.overlaps(b)) return true;
    }
  }
  return false;
}

Uint128 RangeSet::capacity() const {
  Uint128 n = 0;
  for (const auto& r : ranges) n = add_saturating(n, r.capacity());
  return n;
}

std::string RangeSet::str() const {
  std::string s;
  for (const auto& r : ranges) {
    if (!s.empty()) s += ',';
    s += r.str();
  }
  return s;
}

void check_disjoint(const std::vector<RangeSet>& sets) {
  for (size_t i = 1; i < sets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (sets[i].overlaps(sets[j])) {
        throw RangeError("[" + std::to_string(i) + "]",
                         "range set " + std::to_string(i) + " (" + sets[i].str() +
                             ") overlaps range set " + std::to_string(j) + " (" + sets[j].str() +
                             ")");
      }
    }
  }
}

RangeIterator::RangeIterator(const RangeSet& set, std::optional<IpAddress> last) : set_(set) {
  remaining_ = 0;
  for (const auto& r : set_.ranges) remaining_ = add_saturating(remaining_, span(r.start, r.end));
  for (size_t i = 0; last && i < set_.ranges.size(); ++i) {
    if (set_.ranges[i].contains(*last)) {
      index_ = i;
      cur_ = *last;
      started_ = true;
      return;
    }
  }
  index_ = 0;
  cur_ = set_.ranges.front().start;
}

std::optional<RangeIterator::Candidate> RangeIterator::next() {
  while (remaining_ > 0) {
    if (!started_) {
      started_ = true;
    } else if (cur_ == set_.ranges[index_].end) {
      index_ = (index_ + 1) % set_.ranges.size();
      cur_ = set_.ranges[index_].start;
    } else {
      cur_ = cur_ + 1;
    }
    --remaining_;
    const Range& r = set_.ranges[index_];
    if (cur_ != r.gateway) return Candidate{cur_, &r};
  }
  return std::nullopt;
}

}  // namespace ipam
