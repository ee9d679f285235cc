#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/tc.h"

// HTB classes over RTM_*TCLASS, built and read back through libnl-route's rtnl_class objects:
// the queues of an HTB qdisc (qdisc.h), each with its own rate and a priority that decides
// which class sends first when several may.
namespace cni {

struct HtbClass {
  int ifindex = 0;
  uint32_t parent = 0;   // the HTB qdisc (or a parent class)
  uint32_t classid = 0;  // major:minor, major the HTB's
  uint32_t prio = 0;     // 0 sends first
  uint64_t rate = 0;     // bytes/s, guaranteed; at most kMaxHtbRate
  uint64_t ceil = 0;     // bytes/s, with borrowing from the parent
  uint32_t buffer = 0;   // bytes sent at line rate at `rate` after a pause
  uint32_t cbuffer = 0;  // the same at `ceil`
  uint32_t quantum = 0;  // bytes per round among classes of one priority

  // `htb 10:1 parent 10: dev if5 prio 0 rate 625000B/s ceil 625000B/s ...`
  std::string str() const;
  bool operator==(const HtbClass&) const = default;
};

// Kept to 32 bits like the tbf's rate (kMaxTbfRate), which is what an HTB under a tbf needs.
inline constexpr uint64_t kMaxHtbRate = 0xffffffffu;

// NLM_F_CREATE | NLM_F_EXCL. Throws NetlinkError `failed to add class htb 10:1 ...: ...`; a
// rate of 0 or above kMaxHtbRate is std::invalid_argument.
void add_htb_class(NlSocket& sock, const HtbClass& cls);
// The HTB classes of the device, in the kernel's order (other kinds' classes are left out);
// buffers as the kernel keeps them (in ticks: within tbf_burst_tolerance of what was written).
std::vector<HtbClass> list_htb_classes(NlSocket& sock, int ifindex);
// Whether `have` (read back) is what `want` wrote: all exact but the buffers, which are
// within tbf_burst_tolerance of their rates.
bool same_htb_class(const HtbClass& have, const HtbClass& want);

}  // namespace cni
