#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/qdisc.h"
#include "libcni/kernel/tc.h"
#include "libcni/kernel/tc_class.h"
#include "libcni/kernel/tc_filter.h"

// The small-packet band under each tbf: what keeps a loaded pod's sparse traffic (pings, DNS,
// TCP handshakes and ACKs) out of the queue its bulk flows fill. This kernel has no fq_codel,
// fq, cake or prio, so it is an HTB (as the tbf's only child, so the tbf 1: root stays
// upstream's) with two classes under one parent: small packets first while they are within
// half the rate, and up to the whole rate when nothing else waits; the rest behind them. The
// figures: plugins/bandwidth/README.md ("Latency under load").
namespace bandwidth {

// Upstream's tbf handle ("1:"), and its one class, where the band hangs.
inline constexpr uint32_t kTbfHandle = cni::tc_handle(1, 0);
inline constexpr uint32_t kTbfClass = cni::tc_handle(1, 1);
// The HTB, its two classes and their queues.
inline constexpr uint32_t kBandHandle = cni::tc_handle(0x10, 0);
inline constexpr uint32_t kBandRootClass = cni::tc_handle(0x10, 0x10);
inline constexpr uint32_t kSmallClass = cni::tc_handle(0x10, 1);
inline constexpr uint32_t kBulkClass = cni::tc_handle(0x10, 2);
inline constexpr uint32_t kSmallQueue = cni::tc_handle(0x11, 0);
inline constexpr uint32_t kBulkQueue = cni::tc_handle(0x12, 0);
// A packet is small when its IPv4 total length (or IPv6 payload length) is below this: a pure
// ACK is 52 bytes, a ping 84, a DNS query or a SYN well under 256; a full segment is ~1500.
inline constexpr uint32_t kSmallPacketBytes = 256;

struct SmallBand {
  // htb 10: on the tbf's class 1:1; bfifo 11: and 12: as the classes' queues.
  std::vector<cni::Qdisc> qdiscs;
  // 10:10 (the parent, twice the tbf's rate: the tbf above is what limits the total), 10:1
  // (prio 0, half the tbf's rate, borrowing up to the parent's: small packets cannot starve the
  // bulk, and a pod of only small packets still gets the whole rate) and 10:2 (prio 1, the
  // parent's rate less the small class's, borrowing up to it).
  std::vector<cni::HtbClass> classes;
  // u32 on 10: sending small IPv4 (prio 1) and IPv6 (prio 2) packets to 10:1; everything
  // else goes to the HTB's default, 10:2.
  std::vector<cni::U32Filter> filters;
};

// The band under the tbf `tbf` on device `ifindex` of MTU `mtu`: each class's queue holds the
// tbf's limit in bytes.
SmallBand small_band(int ifindex, const cni::TbfParams& tbf, int mtu);

// Adds the band under the device's tbf 1: (made just before), in order: HTB, classes, queues,
// filters. Deleting the tbf removes all of it.
void add_small_band(cni::NlSocket& sock, const SmallBand& band);

// "" when the device has exactly `band` under its tbf; otherwise what differs (for CHECK).
std::string small_band_difference(cni::NlSocket& sock, const SmallBand& band);

}  // namespace bandwidth
