#pragma once

// Error codes of the IPAM executables, host-local and global-ipam (CNI reserves 100 and up
// for plugins; the spec's own codes are in libcni/core/error.h).
namespace ipam {

inline constexpr int kErrNoAddress = 100;           // a range set or pool is used up
inline constexpr int kErrAddressUnavailable = 101;  // a requested address cannot be had
inline constexpr int kErrDuplicate = 102;           // the attachment already holds an address
inline constexpr int kErrLeaseMismatch = 103;       // CHECK: leases differ from the result

}  // namespace ipam
