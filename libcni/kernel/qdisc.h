#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/tc.h"

// Queueing disciplines over RTM_*QDISC, built and read back through libnl-route's rtnl_qdisc
// objects: a token bucket (tbf) as a device's root, the ingress qdisc, clsact. One Qdisc
// describes a qdisc to add, replace or delete, and is what list_qdiscs reads back.
namespace cni {

// A token bucket: `rate` bytes per second on average, `burst` bytes at line rate after a
// pause (the bucket), `limit` bytes waiting at most (the queue; beyond it packets are dropped).
// With a peak rate, a second bucket of `mtu` bytes filling at `peakrate` also has to allow
// each packet: a full bucket then empties at the peak rate rather than at line rate.
struct TbfParams {
  uint64_t rate = 0;      // bytes/s; at most kMaxTbfRate
  uint32_t burst = 0;     // bytes
  uint32_t limit = 0;     // bytes
  uint64_t peakrate = 0;  // bytes/s, above `rate`; 0: none
  uint32_t mtu = 0;       // the peak bucket, bytes (with a peak rate)
  bool operator==(const TbfParams&) const = default;
};

// tc_ratespec carries the rate in 32 bits (libnl 3.7 sets no TCA_TBF_RATE64): 34.36 Gbit/s.
inline constexpr uint64_t kMaxTbfRate = 0xffffffffu;

struct Qdisc {
  int ifindex = 0;
  uint32_t handle = 0;        // 0: the kernel picks one
  uint32_t parent = kTcRoot;  // kTcRoot, kTcIngressParent, or a class
  std::string kind{};  // "tbf", "htb", "bfifo", "ingress", "clsact"; read back also "noqueue"
  std::optional<TbfParams> tbf{};  // kind "tbf"
  // kind "htb": the minor of the class that takes what no filter classifies.
  std::optional<uint32_t> htb_default{};
  // kind "bfifo": the queue's limit in bytes.
  std::optional<uint32_t> fifo_limit{};

  // `tbf 1: root dev if5 rate 1250000B/s burst 12500B limit 31250B`
  std::string str() const;
  bool operator==(const Qdisc&) const = default;
};

// The qdiscs the bandwidth plugin (and upstream's) install: tbf 1: as the root, and the
// ingress qdisc ffff: that filters of incoming traffic hang off.
Qdisc tbf_qdisc(int ifindex, const TbfParams& params, uint32_t handle = tc_handle(1, 0),
                uint32_t parent = kTcRoot);
Qdisc ingress_qdisc(int ifindex);
// An HTB whose classes (tc_class.h) hold the packets; what no filter classifies goes to class
// handle_major:default_minor.
Qdisc htb_qdisc(int ifindex, uint32_t handle, uint32_t parent, uint32_t default_minor);
// A drop-tail queue of at most `limit` bytes.
Qdisc bfifo_qdisc(int ifindex, uint32_t handle, uint32_t parent, uint32_t limit);
Qdisc clsact_qdisc(int ifindex);

// NLM_F_CREATE | NLM_F_EXCL: a qdisc at that parent is EEXIST, except a device's default root
// qdisc (noqueue, pfifo_fast: handle 0), which the new one replaces as `tc qdisc add` does.
// Throws NetlinkError `failed to add qdisc tbf 1: root dev if5 ...: File exists`; a tbf with a
// rate above kMaxTbfRate or a zero rate is std::invalid_argument.
void add_qdisc(NlSocket& sock, const Qdisc& qdisc);
// NLM_F_CREATE | NLM_F_REPLACE: adds it or replaces whatever sits at that parent.
void replace_qdisc(NlSocket& sock, const Qdisc& qdisc);
// Deletes the qdisc at `parent` of the device (its filters and children go with it). ENOENT
// (also what the kernel answers for a default root qdisc) when there is none.
void delete_qdisc(NlSocket& sock, int ifindex, uint32_t parent);
// false when there was nothing to delete at `parent` (DEL is idempotent).
bool delete_qdisc_if_exists(NlSocket& sock, int ifindex, uint32_t parent);

// The qdiscs of one device (ifindex > 0) or of every device, in the kernel's order; a tbf
// comes back with its parameters (burst as the kernel keeps it: see tbf_burst_tolerance).
std::vector<Qdisc> list_qdiscs(NlSocket& sock, int ifindex = 0);
// The qdisc of the device at `parent`, nullopt when none (or only the default root) is there.
std::optional<Qdisc> find_qdisc(NlSocket& sock, int ifindex, uint32_t parent);

// The kernel keeps a tbf's bucket as the time it takes to send it at `rate`, in ticks, and
// libnl turns that back into bytes through whole microseconds: a burst read back may differ
// from the one written by up to this many bytes.
uint32_t tbf_burst_tolerance(uint64_t rate);
// Whether `have` (read back) is what `want` wrote: rates, limit and presence of a peak rate
// exact, the buckets within tbf_burst_tolerance of their rates.
bool same_tbf(const TbfParams& have, const TbfParams& want);

}  // namespace cni
