#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cni::tool {

// SHA-512 (FIPS 180-4) through libcrypto's EVP: cnitool derives container IDs from it exactly
// as upstream does (container_id.h).
std::array<uint8_t, 64> sha512(std::string_view data);

// Lower-case hex of `bytes`.
std::string to_hex(const uint8_t* bytes, size_t n);

}  // namespace cni::tool
