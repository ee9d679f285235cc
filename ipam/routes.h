#pragma once

#include <vector>

#include "libcni/protocol/fields.h"
#include "libcni/protocol/result.h"

namespace ipam {

// The `routes` list of an IPAM config ([{dst, gw?, mtu?, advmss?, priority?, table?, scope?}]),
// read as upstream host-local does: dst keeps host bits ("3ffe:ffff:0:1ff::1/64" is accepted,
// as types.ParseCIDR does), an absent gw stays absent. Faults throw
// cni::Error{kErrInvalidConfig} naming the key ("ipam.routes[1].dst").
std::vector<cni::Route> parse_ipam_routes(const cni::Fields& ipam);

}  // namespace ipam
