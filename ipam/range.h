#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "libcni/core/ip.h"

namespace ipam {

// A config fault in a range, naming the key it concerns relative to the range or the range
// set ("subnet", "rangeEnd", "[1]"), so the config reader can prefix the path it read from
// ("ipam.ranges[0][1].subnet") and keep this code free of JSON.
class RangeError : public std::invalid_argument {
 public:
  RangeError(std::string key, const std::string& why)
      : std::invalid_argument(why), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// One pool of addresses inside a subnet: [start, end], both inclusive. The gateway is never
// handed out. Defaults follow upstream host-local (allocator/range.go): start = network+1
// (the gateway, skipped when iterating, so the first lease is .2), end = the last address
// (minus the broadcast for IPv4), gateway = network+1.
struct Range {
  cni::IpNet subnet;  // host bits clear
  cni::IpAddress start;
  cni::IpAddress end;
  cni::IpAddress gateway;

  // Applies the defaults and validates; throws RangeError naming the key. The subnet must
  // not have host bits and must hold at least two addresses besides network and broadcast
  // (/30 for IPv4, /126 for IPv6). start and end must be inside the subnet, start <= end;
  // the gateway must be of the subnet's family (upstream lets it lie outside the subnet).
  static Range make(const cni::IpNet& subnet, std::optional<cni::IpAddress> start = {},
                    std::optional<cni::IpAddress> end = {},
                    std::optional<cni::IpAddress> gateway = {});

  int family() const { return subnet.ip.family(); }
  bool contains(const cni::IpAddress& a) const;
  bool overlaps(const Range& o) const;
  // Addresses that can be handed out: end - start + 1, minus the gateway when inside.
  cni::Uint128 capacity() const;
  // "10.1.0.1-10.1.0.254", as upstream prints a range in its messages.
  std::string str() const;
  bool operator==(const Range&) const = default;
};

// The pool one address of a result comes from: disjoint ranges of one family, tried in order.
struct RangeSet {
  std::vector<Range> ranges;

  // Validates a set: not empty, one family, no two ranges overlapping. Throws RangeError
  // whose key is the index of the offending range ("[1]").
  static RangeSet make(std::vector<Range> ranges);

  int family() const { return ranges.front().family(); }
  bool contains(const cni::IpAddress& a) const { return range_for(a) != nullptr; }
  // The range holding `a`, or nullptr.
  const Range* range_for(const cni::IpAddress& a) const;
  bool overlaps(const RangeSet& o) const;
  // Sum of the ranges' capacities, saturating.
  cni::Uint128 capacity() const;
  // "10.1.0.2-10.1.0.254,10.2.0.2-10.2.0.254"
  std::string str() const;
  bool operator==(const RangeSet&) const = default;
};

// Throws RangeError keyed "[j]" when set j overlaps an earlier set.
void check_disjoint(const std::vector<RangeSet>& sets);

// Walks every address of a set once, round robin (upstream's RangeIter): it starts right
// after `last` when a range of the set holds it (so a crash-looping container does not get
// the same address back until the set has been used up), else at the first range's start;
// it moves on to the next range after a range's end, wraps around, and skips each range's
// gateway. `last` itself comes last.
class RangeIterator {
 public:
  struct Candidate {
    cni::IpAddress ip;
    const Range* range;
  };

  RangeIterator(const RangeSet& set, std::optional<cni::IpAddress> last);
  // The next address to try, or nullopt once every address has been offered.
  std::optional<Candidate> next();

 private:
  const RangeSet& set_;
  size_t index_ = 0;
  cni::IpAddress cur_;
  bool started_ = false;    // cur_ has been offered (or is `last`)
  cni::Uint128 remaining_;  // addresses not yet visited
};

}  // namespace ipam
