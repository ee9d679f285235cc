#pragma once

#include <string>
#include <string_view>

#include "libcni/protocol/result.h"

namespace ipam {

// Parses resolv.conf text the way upstream host-local does (dns.go): blank lines and lines
// starting with '#' or ';' are skipped, as are lines with fewer than two fields;
// "nameserver" appends its first argument, "domain" sets (last one wins), "search" and
// "options" append all their arguments. Other keywords are ignored.
cni::Dns parse_resolv_conf(std::string_view text);

// Reads and parses the file; throws std::system_error naming the path when it cannot be read.
cni::Dns read_resolv_conf(const std::string& path);

}  // namespace ipam
