#pragma once

#include <cstdint>

namespace overlay {

// The rtm_protocol of every route the overlays make on a node: blackholes for local blocks,
// routes to remote blocks and /32s (/128s) of borrowed addresses. The agent deletes only
// routes that carry it, so nothing another program made is touched. 157 is in none of
// iproute2's rt_protos (0-4, 8-16, 18, 42, 99, 186-192), not FRR's (186-196) nor BIRD's (12),
// Calico felix's (80) or the kernel's RTPROT_* list; `ip route show proto 157` lists ours.
inline constexpr uint8_t kRouteProtocol = 157;

}  // namespace overlay
