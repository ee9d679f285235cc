#include "libcni/core/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace cni {

namespace {
constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

// IPv6 text as Go's net.IP.String() prints it, so that lease file names and results match
// upstream byte for byte. It differs from inet_ntop() only for addresses in ::/96, which
// glibc prints as "::1.2.3.4" and Go as "::102:304"; elsewhere both follow RFC 5952 (lower
// case, the longest run of two or more zero groups compressed, the first on a tie).
std::string ipv6_text(const uint8_t* b) {
  std::array<unsigned, 8> words{};
  for (size_t i = 0; i < 8; ++i) words[i] = (unsigned{b[2 * i]} << 8) | b[2 * i + 1];
  // The longest run of zero words, at least two long.
  size_t best = 8;
  size_t best_len = 1;
  for (size_t i = 0; i < 8;) {
    if (words[i] != 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < 8 && words[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string s;
  char buf[8];
  for (size_t i = 0; i < 8; ++i) {
    if (i == best) {
      s += "::";
      i += best_len - 1;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ':';
    std::snprintf(buf, sizeof buf, "%x", words[i]);
    s += buf;
  }
  return s;
}
}  // namespace

std::optional<IpAddress> IpAddress::try_parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  IpAddress a;
  if (s.find(':') == std::string::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
    a.family_ = AF_INET;
    std::memcpy(a.bytes_.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  a.family_ = AF_INET6;
  std::memcpy(a.bytes_.data(), &v6, 16);
  return a;
}

IpAddress IpAddress::parse(std::string_view text) {
  auto a = try_parse(text);
  if (!a) throw std::invalid_argument("invalid IP address \"" + std::string(text) + "\"");
  return *a;
}

IpAddress IpAddress::from_bytes(int family, const void* bytes) {
  IpAddress a;
  a.family_ = family;
  if (family == AF_INET) {
    std::memcpy(a.bytes_.data() + 12, bytes, 4);
  } else if (family == AF_INET6) {
    std::memcpy(a.bytes_.data(), bytes, 16);
  } else {
    throw std::invalid_argument("unknown address family " + std::to_string(family));
  }
  return a;
}

bool IpAddress::is_v4() const { return family_ == AF_INET; }
bool IpAddress::is_v6() const { return family_ == AF_INET6; }

const uint8_t* IpAddress::data() const { return is_v4() ? bytes_.data() + 12 : bytes_.data(); }

std::string IpAddress::str() const {
  if (family_ == 0) return "";
  if (is_v6()) return ipv6_text(data());
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, data(), buf, sizeof buf);
  return buf;
}

Uint128 IpAddress::as_u128() const {
  Uint128 v = 0;
  for (uint8_t b : bytes_) v = (v << 8) | b;
  return v;
}

IpAddress IpAddress::from_u128(int family, Uint128 v) {
  IpAddress a;
  a.family_ = family;
  if (family == AF_INET) v &= 0xffffffffu;
  for (int i = 15; i >= 0; --i) {
    a.bytes_[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  if (family == AF_INET) std::memcpy(a.bytes_.data(), kV4MappedPrefix, 12);
  return a;
}

IpAddress IpAddress::operator+(int64_t offset) const {
  Uint128 v = as_u128();
  if (offset >= 0) {
    v += static_cast<Uint128>(offset);
  } else {
    v -= static_cast<Uint128>(-(offset + 1)) + 1;
  }
  return from_u128(family_, v);
}

Uint128 IpAddress::operator-(const IpAddress& other) const { return as_u128() - other.as_u128(); }

std::strong_ordering IpAddress::operator<=>(const IpAddress& o) const {
  if (auto c = family_ <=> o.family_; c != 0) return c;
  return bytes_ <=> o.bytes_;
}

std::optional<IpNet> IpNet::try_parse(std::string_view text, bool allow_bare) {
  auto slash = text.find('/');
  IpNet n;
  if (slash == std::string_view::npos) {
    if (!allow_bare) return std::nullopt;
    auto a = IpAddress::try_parse(text);
    if (!a) return std::nullopt;
    n.ip = *a;
    n.prefix = a->bits();
    return n;
  }
  auto a = IpAddress::try_parse(text.substr(0, slash));
  if (!a) return std::nullopt;
  std::string_view p = text.substr(slash + 1);
  int prefix = -1;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size()) return std::nullopt;
  if (prefix < 0 || prefix > a->bits()) return std::nullopt;
  n.ip = *a;
  n.prefix = prefix;
  return n;
}

IpNet IpNet::parse(std::string_view text, bool allow_bare) {
  auto n = try_parse(text, allow_bare);
  if (!n) throw std::invalid_argument("invalid CIDR \"" + std::string(text) + "\"");
  return *n;
}

namespace {
Uint128 host_mask(const IpNet& n) {
  int host_bits = n.ip.bits() - n.prefix;
  if (host_bits >= 128) return ~static_cast<Uint128>(0);
  return (static_cast<Uint128>(1) << host_bits) - 1;
}
}  // namespace

IpNet IpNet::network() const {
  return {IpAddress::from_u128(ip.family(), ip.as_u128() & ~host_mask(*this)), prefix};
}

IpAddress IpNet::last() const {
  return IpAddress::from_u128(ip.family(), ip.as_u128() | host_mask(*this));
}

bool IpNet::contains(const IpAddress& a) const {
  if (a.family() != ip.family()) return false;
  return (a.as_u128() & ~host_mask(*this)) == (ip.as_u128() & ~host_mask(*this));
}

bool IpNet::overlaps(const IpNet& o) const {
  if (o.ip.family() != ip.family()) return false;
  return contains(o.first()) || o.contains(first());
}

Uint128 IpNet::size() const {
  int host_bits = ip.bits() - prefix;
  if (host_bits >= 127) return static_cast<Uint128>(1) << 127;
  return static_cast<Uint128>(1) << host_bits;
}

std::string IpNet::str() const { return ip.str() + "/" + std::to_string(prefix); }

}  // namespace cni
