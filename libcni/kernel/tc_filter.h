#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/tc.h"

// Traffic control filters over RTM_*TFILTER, built and read back through libnl-route's
// rtnl_cls (u32 classifier) and rtnl_act (mirred action) objects: what steers a device's
// traffic to another device, e.g. everything arriving on a veth into an ifb that shapes it.
namespace cni {

inline constexpr uint16_t kEthPAll = 0x0003;  // ETH_P_ALL: every protocol

// The mirred action: send the packet (redirect) or a copy of it (mirror) out of (egress) or
// into (ingress) another device.
enum class MirredKind { kEgressRedirect, kEgressMirror, kIngressRedirect, kIngressMirror };

struct MirredAction {
  MirredKind kind = MirredKind::kEgressRedirect;
  int ifindex = 0;  // the target device, in the socket's netns
  // What the filter does with the packet afterwards: a redirect takes it (stolen), a mirror
  // lets it go on (pipe).
  TcVerdict verdict = TcVerdict::kStolen;
  bool operator==(const MirredAction&) const = default;
};

// One action of a filter as read back: its kind ("mirred", "gact", ...) and, for mirred, what
// it does.
struct TcAction {
  std::string kind{};
  std::optional<MirredAction> mirred{};
  bool operator==(const TcAction&) const = default;
};

// One 32-bit match of a u32 selector: (packet word at `offset` & mask) == value. Value and
// mask in network byte order, as the kernel keeps them.
struct U32Key {
  uint32_t value = 0;
  uint32_t mask = 0;
  int offset = 0;
  int offmask = 0;
  bool operator==(const U32Key&) const = default;
};

// A u32 filter to add. No keys matches every packet (one key 0/0 at offset 0, as `tc ...
// u32 match u32 0 0` writes it).
struct U32Filter {
  int ifindex = 0;
  uint32_t parent = 0;  // the qdisc (kTcIngressHandle, a clsact hook) or class it hangs off
  uint16_t priority = 1;
  uint16_t protocol = kEthPAll;  // host byte order
  std::vector<U32Key> keys{};
  std::optional<uint32_t> classid{};  // tc's flowid
  std::vector<MirredAction> actions{};
  std::string str() const;  // `u32 prio 1 protocol all parent ffff: dev if5 ...`
};

// A filter as read back. u32 hash tables and the per-priority headers the kernel also dumps
// are left out of list_filters: what remains are the rules.
struct TcFilter {
  int ifindex = 0;
  uint32_t parent = 0;
  uint32_t handle = 0;  // u32: 800::800 for the first rule
  uint16_t priority = 0;
  uint16_t protocol = 0;
  std::string kind{};                 // "u32", "bpf", ...
  std::vector<U32Key> u32_keys{};     // kind u32
  std::optional<uint32_t> classid{};  // kind u32
  std::vector<TcAction> actions{};
};

// Upstream bandwidth's redirect: every packet arriving at `ifindex` (a filter of its ingress
// qdisc) goes out of `target_ifindex`: u32 prio 1, protocol all, match-all, flowid 1:1,
// mirred egress redirect.
U32Filter u32_redirect_all(int ifindex, uint32_t parent, int target_ifindex);

// NLM_F_CREATE | NLM_F_EXCL. Throws NetlinkError `failed to add filter u32 prio 1 ...: ...`.
void add_u32_filter(NlSocket& sock, const U32Filter& filter);
// Deletes the filters at `parent` of the device with `priority` and `protocol` (0: any of
// them; both 0: every filter there). ENOENT when none matches.
void delete_filters(NlSocket& sock, int ifindex, uint32_t parent, uint16_t priority = 0,
                    uint16_t protocol = 0);
// The filter rules at `parent` of the device, in the kernel's order.
std::vector<TcFilter> list_filters(NlSocket& sock, int ifindex, uint32_t parent);

}  // namespace cni
