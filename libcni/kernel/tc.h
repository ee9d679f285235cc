#pragma once

#include <cstdint>
#include <string>

// Traffic control's shared vocabulary: the 32-bit handles that name qdiscs and classes
// ("major:minor", printed in hex as tc does: 1:, ffff:, 1:1) and the parents every device
// has. qdisc.h and tc_filter.h use it.
namespace cni {

constexpr uint32_t tc_handle(uint32_t major, uint32_t minor) {
  return (major << 16) | (minor & 0xffffu);
}
constexpr uint32_t tc_major(uint32_t handle) { return handle >> 16; }
constexpr uint32_t tc_minor(uint32_t handle) { return handle & 0xffffu; }

inline constexpr uint32_t kTcRoot = 0xffffffffu;  // TC_H_ROOT: the device's egress root
// TC_H_INGRESS (== TC_H_CLSACT): where an ingress or clsact qdisc hangs.
inline constexpr uint32_t kTcIngressParent = 0xfffffff1u;
// The handle of an ingress qdisc ("ffff:"), and the parent its filters name.
inline constexpr uint32_t kTcIngressHandle = tc_handle(0xffff, 0);
// clsact's two filter hooks: "ffff:fff2" (ingress) and "ffff:fff3" (egress).
inline constexpr uint32_t kTcClsactIngress = tc_handle(0xffff, 0xfff2);
inline constexpr uint32_t kTcClsactEgress = tc_handle(0xffff, 0xfff3);

// "root", "ingress", or tc's "major:minor" in hex with an empty minor left out ("1:", "1:1").
std::string tc_handle_str(uint32_t handle);

// The verdict an action hands back to the classifier (TC_ACT_*).
enum class TcVerdict : int { kOk = 0, kReclassify = 1, kShot = 2, kPipe = 3, kStolen = 4 };

}  // namespace cni
