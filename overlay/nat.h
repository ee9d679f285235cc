#pragma once

#include <string>
#include <vector>

#include "ipam/global/config.h"
#include "libcni/core/log.h"

// Outgoing NAT of the overlay pools (Calico's natOutgoing, flannel's ipMasq): traffic from a
// pod of a pool with natOutgoing (unset: true) to an address outside every pool of the config
// leaves the node masqueraded to the address of the interface it leaves by (the node's
// underlay address on the default route). Pod-to-pod traffic, of any pool and across nodes,
// keeps its source: every pool's CIDR is returned from first.
//
// In nftables, a table of our own per family (`table ip strait-nat`, `table ip6 strait-nat`),
// present only while a pool of that family masquerades:
//   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//     ip daddr <every pool> return
//     ip saddr <every natOutgoing pool> masquerade }
// A pass lists the tables that exist, reads ours back and compares them with the wanted text
// (as `nft list table` prints it, whitespace aside); only a difference is written, and then in
// one transaction that replaces the table whole ("add table; delete table; table {...}") or
// deletes it. No other table is named, read or written.
namespace overlay {

inline constexpr char kNatTable[] = "strait-nat";

// The wanted table of `family` (AF_INET, AF_INET6) for `pools` in nft's listing syntax; empty
// when no pool of that family masquerades.
std::string nat_table(const std::vector<ipam::PoolConfig>& pools, int family);

// Makes the kernel's strait-nat tables (in the calling thread's netns) those `pools` want and
// returns how many tables it wrote (replaced or deleted): 0 when both were as wanted.
// NftError naming what is missing when nftables or the kernel refuses, except where no pool
// wants a table: then a kernel without nf_tables (which holds none of ours) is no error.
int reconcile_nat(const std::vector<ipam::PoolConfig>& pools, cni::Logger& log);

}  // namespace overlay
