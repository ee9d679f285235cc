#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cni {

// A 48-bit Ethernet address: what the macvlan `mac` key, runtimeConfig.mac, CNI_ARGS MAC=
// and result interfaces carry.
class MacAddress {
 public:
  MacAddress() = default;  // 00:00:00:00:00:00
  explicit MacAddress(const std::array<uint8_t, 6>& bytes) : bytes_(bytes) {}

  // "aa:bb:cc:dd:ee:ff" or "aa-bb-cc-dd-ee-ff", either case. parse() throws
  // std::invalid_argument naming the text.
  static std::optional<MacAddress> try_parse(std::string_view text);
  static MacAddress parse(std::string_view text);
  static MacAddress from_bytes(const uint8_t* bytes);  // 6 bytes

  static MacAddress broadcast() { return MacAddress({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); }

  const std::array<uint8_t, 6>& bytes() const { return bytes_; }
  const uint8_t* data() const { return bytes_.data(); }
  std::string str() const;  // lowercase, colon separated

  bool is_zero() const { return *this == MacAddress(); }
  bool is_multicast() const { return (bytes_[0] & 0x01) != 0; }  // includes broadcast
  bool is_locally_administered() const { return (bytes_[0] & 0x02) != 0; }

  bool operator==(const MacAddress&) const = default;

 private:
  std::array<uint8_t, 6> bytes_{};
};

// Hex bytes joined by ':' in lowercase, for hardware addresses of any length (6 for
// Ethernet, 4 for an ipip tunnel, 20 for InfiniBand).
std::string format_hwaddr(const uint8_t* bytes, size_t len);

}  // namespace cni
