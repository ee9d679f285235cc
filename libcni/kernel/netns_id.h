#pragma once

#include <cstdint>
#include <optional>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"

// Namespace ids (RTM_GETNSID): the number a network namespace gives another one, which is how
// a link whose other end lives elsewhere names that namespace (LinkInfo::link_netnsid). Only
// comparing ids tells whether a veth's peer is in a given namespace: interface indexes repeat
// in every namespace (each pod's first interface is index 2).
namespace cni {

// The id `sock`'s namespace gives `other`; nullopt when it has given it none (no link there
// has its other end in `other`). Throws NetlinkError naming the request.
std::optional<int32_t> netns_id(NlSocket& sock, const Netns& other);

}  // namespace cni
