#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipam/range.h"
#include "libcni/core/ip.h"
#include "test/fuzz/fuzz_check.h"

// CIDR and range arithmetic: four lines (subnet, rangeStart, rangeEnd, gateway; an empty
// line is "not given"). Whatever Range::make accepts must be self-consistent, and the
// round-robin iterator must offer in-range, non-gateway addresses without repeating.
using strait::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> l =
      strait::fuzz::first_lines(std::string_view(reinterpret_cast<const char*>(data), size), 4);
  std::optional<cni::IpNet> subnet = cni::IpNet::try_parse(l[0]);
  // try_parse and parse agree.
  try {
    cni::IpNet n = cni::IpNet::parse(l[0]);
    check(subnet && *subnet == n, "IpNet::parse accepts what try_parse refuses");
    check(cni::IpNet::parse(n.str()) == n, "IpNet does not round-trip through str()");
  } catch (const std::exception&) {
    check(!subnet, "IpNet::try_parse accepts what parse refuses");
  }
  if (!subnet) return 0;
  auto opt_ip = [](const std::string& s) -> std::optional<cni::IpAddress> {
    if (s.empty()) return std::nullopt;
    return cni::IpAddress::try_parse(s);
  };
  std::optional<cni::IpAddress> start = opt_ip(l[1]), end = opt_ip(l[2]), gw = opt_ip(l[3]);
  std::optional<ipam::Range> r;
  try {
    r = ipam::Range::make(*subnet, start, end, gw);
  } catch (const ipam::RangeError&) {
    return 0;
  }
  check(r->contains(r->start) && r->contains(r->end), "start/end outside the range");
  check(!(r->end < r->start), "end before start");
  // Only a one-address range that is its own gateway is empty (upstream accepts it too; ADD
  // then fails with "no IP addresses available", STATUS reports 50).
  check(r->capacity() >= 1 || (r->start == r->end && r->start == r->gateway),
        "empty range accepted");
  ipam::RangeSet set = ipam::RangeSet::make({*r});
  check(set.capacity() == r->capacity(), "set capacity differs");
  std::optional<cni::IpAddress> last;
  if (start && r->contains(*start)) last = *start;
  ipam::RangeIterator it(set, last);
  cni::Uint128 n = 0;
  std::optional<cni::IpAddress> first;
  while (auto c = it.next()) {
    check(r->contains(c->ip), "iterator left the range");
    check(!(c->ip == r->gateway), "iterator offered the gateway");
    if (!first) {
      first = c->ip;
    } else {
      check(!(c->ip == *first), "iterator repeated its first address");
    }
    if (++n >= 4096) break;
  }
  check(n == (r->capacity() < 4096 ? r->capacity() : cni::Uint128{4096}),
        "iterator count differs from capacity");
  return 0;
}
