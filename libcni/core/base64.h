#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cni {

// RFC 4648 standard alphabet with padding: how Go's encoding/json writes a []byte (libcni's
// result cache stores the network config so) and how etcd's JSON gateway encodes keys and
// values.
std::string base64_encode(std::string_view data);
// nullopt on any character outside the alphabet or a malformed length/padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace cni
