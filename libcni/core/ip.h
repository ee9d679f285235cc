#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cni {

// 128-bit unsigned arithmetic for IPv6 offsets (a GCC/Clang extension).
__extension__ typedef unsigned __int128 Uint128;

// An IPv4 or IPv6 address. Stored as 16 bytes (IPv4 in the last four) so that range
// arithmetic is one code path; family() tells them apart.
class IpAddress {
 public:
  IpAddress() = default;

  // Parses dotted-quad or RFC 4291 text; throws std::invalid_argument naming the text.
  static IpAddress parse(std::string_view text);
  static std::optional<IpAddress> try_parse(std::string_view text);
  static IpAddress from_bytes(int family, const void* bytes);  // 4 or 16 bytes

  int family() const { return family_; }  // AF_INET or AF_INET6; 0 when default-constructed
  bool is_v4() const;
  bool is_v6() const;
  int bits() const { return is_v4() ? 32 : 128; }
  const uint8_t* data() const;  // network order, 4 or 16 bytes
  size_t size() const { return is_v4() ? 4 : 16; }
  std::string str() const;

  // Offset arithmetic within the family; wraps modulo 2^bits.
  IpAddress operator+(int64_t offset) const;
  IpAddress operator-(int64_t offset) const { return *this + (-offset); }
  // a - b as an unsigned 128-bit distance (a >= b assumed).
  Uint128 operator-(const IpAddress& other) const;

  std::strong_ordering operator<=>(const IpAddress& o) const;
  bool operator==(const IpAddress& o) const = default;

  Uint128 as_u128() const;
  static IpAddress from_u128(int family, Uint128 v);

 private:
  int family_ = 0;
  std::array<uint8_t, 16> bytes_{};
};

// An address with a prefix length: "10.1.2.3/24". The address may carry host bits (an
// interface address); network() clears them.
struct IpNet {
  IpAddress ip;
  int prefix = 0;

  // Throws std::invalid_argument naming the text; a bare address gets the full prefix only
  // when allow_bare is set.
  static IpNet parse(std::string_view text, bool allow_bare = false);
  static std::optional<IpNet> try_parse(std::string_view text, bool allow_bare = false);

  IpNet network() const;
  IpAddress first() const { return network().ip; }
  IpAddress last() const;  // broadcast for IPv4
  bool contains(const IpAddress& a) const;
  bool overlaps(const IpNet& o) const;
  bool has_host_bits() const { return network().ip != ip; }
  Uint128 size() const;  // number of addresses, saturating at 2^127
  std::string str() const;
  bool operator==(const IpNet& o) const = default;
};

}  // namespace cni
