#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cni::tool {

// RFC 4648 standard alphabet with padding: how Go's encoding/json writes a []byte, which is
// how libcni stores the network config in its result cache.
std::string base64_encode(std::string_view data);
// nullopt on any character outside the alphabet or a malformed length/padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace cni::tool
