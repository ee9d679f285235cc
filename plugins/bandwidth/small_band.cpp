#include "plugins/bandwidth/small_band.h"

#include <arpa/inet.h>

#include <algorithm>

#include "plugins/bandwidth/tbf_sizing.h"

namespace bandwidth {

namespace {

constexpr uint16_t kEthPIp = 0x0800;
constexpr uint16_t kEthPIpv6 = 0x86dd;

// The high byte of the IPv4 total length (bytes 2-3 of the header) and of the IPv6 payload
// length (bytes 4-5) is zero: the length is below 256. Value and mask in network byte order.
static_assert(kSmallPacketBytes == 256, "the u32 masks below test the length's high byte");
cni::U32Key ipv4_small() { return {.value = 0, .mask = htonl(0x0000ff00u), .offset = 0}; }
cni::U32Key ipv6_small() { return {.value = 0, .mask = htonl(0xff000000u), .offset = 4}; }

cni::U32Filter small_filter(int ifindex, uint16_t priority, uint16_t protocol, cni::U32Key key) {
  cni::U32Filter f;
  f.ifindex = ifindex;
  f.parent = kBandHandle;
  f.priority = priority;
  f.protocol = protocol;
  f.keys = {key};
  f.classid = kSmallClass;
  return f;
}

}  // namespace

SmallBand small_band(int ifindex, const cni::TbfParams& tbf, int mtu) {
  SmallBand b;
  const uint32_t frame = static_cast<uint32_t>(std::max(mtu, 68)) + kEthHeader;
  b.qdiscs = {cni::htb_qdisc(ifindex, kBandHandle, kTbfClass, cni::tc_minor(kBulkClass)),
              cni::bfifo_qdisc(ifindex, kSmallQueue, kSmallClass, tbf.limit),
              cni::bfifo_qdisc(ifindex, kBulkQueue, kBulkClass, tbf.limit)};
  // Both classes hang on one parent class (10:10) at twice the tbf's rate, which they may
  // borrow up to: HTB hands the tbf a small packet first while the small class is within its
  // own rate (a quarter of the parent's: half the tbf's), so a flood of small packets leaves
  // the bulk flows half; a pod that sends only small packets (a game server's UDP) borrows the
  // rest and gets the whole rate. The tbf above is what limits the total.
  const uint64_t top = std::min<uint64_t>(tbf.rate * 2, cni::kMaxHtbRate);
  const uint64_t small_rate = std::max<uint64_t>(top / 4, 1);
  const uint32_t gso_bucket = kGsoMaxBytes + frame;
  // The small class's bucket at its own rate: two frames (it carries small packets); every
  // bucket at the ceiling holds a whole GSO packet, so that HTB never throttles a class below
  // the tbf's pace. The quantum only matters between classes of one priority, of which there
  // are none.
  b.classes = {{.ifindex = ifindex,
                .parent = kBandHandle,
                .classid = kBandRootClass,
                .prio = 0,
                .rate = top,
                .ceil = top,
                .buffer = gso_bucket,
                .cbuffer = gso_bucket,
                .quantum = frame},
               {.ifindex = ifindex,
                .parent = kBandRootClass,
                .classid = kSmallClass,
                .prio = 0,
                .rate = small_rate,
                .ceil = top,
                .buffer = 2 * frame,
                .cbuffer = gso_bucket,
                .quantum = frame},
               {.ifindex = ifindex,
                .parent = kBandRootClass,
                .classid = kBulkClass,
                .prio = 1,
                .rate = std::max<uint64_t>(top - small_rate, 1),
                .ceil = top,
                .buffer = gso_bucket,
                .cbuffer = gso_bucket,
                .quantum = frame}};
  b.filters = {small_filter(ifindex, 1, kEthPIp, ipv4_small()),
               small_filter(ifindex, 2, kEthPIpv6, ipv6_small())};
  return b;
}

void add_small_band(cni::NlSocket& sock, const SmallBand& band) {
  cni::add_qdisc(sock, band.qdiscs.front());
  for (const auto& c : band.classes) cni::add_htb_class(sock, c);
  for (size_t i = 1; i < band.qdiscs.size(); ++i) cni::add_qdisc(sock, band.qdiscs[i]);
  for (const auto& f : band.filters) cni::add_u32_filter(sock, f);
}

std::string small_band_difference(cni::NlSocket& sock, const SmallBand& band) {
  const int dev = band.qdiscs.front().ifindex;
  for (const auto& want : band.qdiscs) {
    auto have = cni::find_qdisc(sock, dev, want.parent);
    if (!have || !(*have == want)) {
      return "at " + cni::tc_handle_str(want.parent) + " is " +
             (have ? have->str() : std::string("no qdisc")) + ", expected " + want.str();
    }
  }
  const auto classes = cni::list_htb_classes(sock, dev);
  for (const auto& want : band.classes) {
    auto it = std::find_if(classes.begin(), classes.end(),
                           [&](const cni::HtbClass& c) { return c.classid == want.classid; });
    if (it == classes.end() || !cni::same_htb_class(*it, want)) {
      return "class " + cni::tc_handle_str(want.classid) + " is " +
             (it == classes.end() ? std::string("missing") : it->str()) + ", expected " +
             want.str();
    }
  }
  if (classes.size() != band.classes.size()) {
    return std::to_string(classes.size()) + " HTB classes, expected " +
           std::to_string(band.classes.size());
  }
  const auto filters = cni::list_filters(sock, dev, kBandHandle);
  bool same = filters.size() == band.filters.size();
  for (size_t i = 0; same && i < filters.size(); ++i) {
    const auto& have = filters[i];
    const auto& want = band.filters[i];
    same = have.kind == "u32" && have.priority == want.priority && have.protocol == want.protocol &&
           have.u32_keys == want.keys && have.classid == want.classid && have.actions.empty();
  }
  if (!same) {
    return "the filters at " + cni::tc_handle_str(kBandHandle) + " (" +
           std::to_string(filters.size()) + " rule(s)) are not " + band.filters[0].str() + " and " +
           band.filters[1].str();
  }
  return "";
}

}  // namespace bandwidth
