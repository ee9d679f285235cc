#pragma once

#include <string>

#include "libcni/ip.h"

namespace ipam {

// The text Go's net.IP.String() prints for `a`: lease file names and last_reserved_ip must
// be byte-identical to what upstream host-local writes and looks up. It differs from
// inet_ntop() for IPv6 addresses in ::/96, which glibc prints as "::1.2.3.4" and Go as
// "::102:304"; elsewhere both follow RFC 5952 (lower case, the longest run of two or more
// zero groups compressed, the first on a tie).
std::string go_ip_string(const cni::IpAddress& a);

}  // namespace ipam
