#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

// One stable hash for names derived from an attachment or a node: device names (a temporary
// link name, a host veth, an ifb), lease index entries, a node's block probe order. Stable
// means the same on every build and machine, forever: a name derived by one version of a
// plugin must be found by the next (DEL needs no state because it can derive the name again).
namespace cni {

inline constexpr uint64_t kFnv64Offset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv64Prime = 0x100000001b3ull;

// FNV-1a, 64 bits, over `bytes` as they are, continuing from `h`. Only for names that
// predate the framing below: host-local's index entries "h.<16 hex>" hash
// container ID + '\0' + ifname with no trailing NUL (ipam/host_local/disk_store.cpp), and
// leases on disk keep those names.
constexpr uint64_t fnv1a64_bytes(std::string_view bytes, uint64_t h = kFnv64Offset) {
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnv64Prime;
  }
  return h;
}

// FNV-1a, 64 bits, over `parts` with a NUL byte after each part, so ("ab", "c") and
// ("a", "bc") differ. FNV's low bits mix poorly for short inputs; stable_hash64 finishes with
// splitmix64's avalanche so every bit depends on every input byte.
constexpr uint64_t fnv1a64(std::initializer_list<std::string_view> parts) {
  uint64_t h = kFnv64Offset;
  for (std::string_view part : parts) {
    h = fnv1a64_bytes(part, h);
    h *= kFnv64Prime;  // the NUL separator: h ^= 0 is a no-op
  }
  return h;
}

constexpr uint64_t avalanche64(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

constexpr uint64_t stable_hash64(std::initializer_list<std::string_view> parts) {
  return avalanche64(fnv1a64(parts));
}

// `prefix` followed by `digits` lowercase hex digits of stable_hash64(parts), e.g. a host
// veth name hashed_name("st", {network, container_id}, 11) == "st3f9a0c1d2b4". Interface
// names hold 15 bytes: callers keep prefix + digits <= 15.
inline std::string hashed_name(std::string_view prefix,
                               std::initializer_list<std::string_view> parts, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t h = stable_hash64(parts);
  std::string name(prefix);
  for (int i = 0; i < digits && i < 16; ++i, h >>= 4) name += kHex[h & 0xf];
  return name;
}

}  // namespace cni
