#pragma once

#include <string_view>

#include "libcni/core/ip.h"
#include "libcni/core/mac.h"

// Address announcements after configuring an interface, so that neighbours drop stale
// entries when an IP moves to a new MAC (a pod restarted on another macvlan or VF). Upstream
// sets arp_notify/ndisc_notify and also sends one gratuitous ARP (arping) per IPv4 address;
// sriov-cni sends an unsolicited NA per IPv6 address.
//
// Both send from the calling thread's current network namespace: enter the pod's netns
// with a NetnsGuard first. Errors are std::system_error naming the interface:
// `failed to send gratuitous ARP for 10.1.0.5 on "eth0": Network is down`.
namespace cni {

// An ARP request (RFC 5227 announcement) from `mac`: sender = target = `ip`, to the
// broadcast address. `ip` must be IPv4.
void send_gratuitous_arp(int ifindex, std::string_view ifname, const MacAddress& mac,
                         const IpAddress& ip);

// An unsolicited Neighbor Advertisement (RFC 4861 7.2.6) to ff02::1 with the Override
// flag and `mac` as target link-layer address, hop limit 255. `ip` must be IPv6.
void send_unsolicited_na(int ifindex, std::string_view ifname, const MacAddress& mac,
                         const IpAddress& ip);

// The one of the two that fits `ip`'s family.
void announce_address(int ifindex, std::string_view ifname, const MacAddress& mac,
                      const IpAddress& ip);

}  // namespace cni
