#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/ip.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"

namespace ipam {

// An address the runtime asked for, with where it came from for error messages.
struct AddressRequest {
  cni::IpAddress ip;
  std::string source;  // "CNI_ARGS IP", "args.cni.ips[0]", "runtimeConfig.ips[1]"
  bool operator==(const AddressRequest&) const = default;
};

// The addresses asked for by CNI_ARGS IP= (several comma-separated), args.cni.ips
// (CONVENTIONS.md) and runtimeConfig.ips (capability "ips"), in that order, duplicates
// dropped. Each may be written "10.1.0.5" or "10.1.0.5/24"; IPv4-mapped IPv6 addresses count
// as IPv4 (Go's To4()), as in upstream host-local. A malformed CNI_ARGS IP is
// cni::Error{kErrInvalidEnv}; a malformed list entry is kErrInvalidConfig naming it.
std::vector<AddressRequest> parse_address_requests(const cni::NetConf& conf, const cni::Env& env);

// "10.1.0.5" or "10.1.0.5/24" as one requested address; nullopt when it is neither.
std::optional<cni::IpAddress> parse_requested_address(std::string_view text);

}  // namespace ipam
