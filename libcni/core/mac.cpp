#include "libcni/core/mac.h"

#include <stdexcept>

namespace cni {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<MacAddress> MacAddress::try_parse(std::string_view text) {
  // Six two-digit groups and five separators, all the same (':' or '-').
  if (text.size() != 17) return std::nullopt;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return std::nullopt;
  std::array<uint8_t, 6> bytes{};
  for (size_t i = 0; i < 6; ++i) {
    const size_t at = i * 3;
    if (i > 0 && text[at - 1] != sep) return std::nullopt;
    const int hi = hex_value(text[at]);
    const int lo = hex_value(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return MacAddress(bytes);
}

MacAddress MacAddress::parse(std::string_view text) {
  auto mac = try_parse(text);
  if (!mac) throw std::invalid_argument("invalid MAC address \"" + std::string(text) + "\"");
  return *mac;
}

MacAddress MacAddress::from_bytes(const uint8_t* bytes) {
  std::array<uint8_t, 6> b{};
  for (size_t i = 0; i < 6; ++i) b[i] = bytes[i];
  return MacAddress(b);
}

std::string MacAddress::str() const { return format_hwaddr(bytes_.data(), bytes_.size()); }

std::string format_hwaddr(const uint8_t* bytes, size_t len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 3);
  for (size_t i = 0; i < len; ++i) {
    if (i > 0) out += ':';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0x0f];
  }
  return out;
}

}  // namespace cni
