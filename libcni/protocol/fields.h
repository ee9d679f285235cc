#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/ip.h"

namespace cni {

// Typed, validated access to the keys of one JSON object of a config. Every failure throws
// Error{kErrInvalidConfig} whose message names the key by its path and the offending
// value, e.g. `invalid config: "ipam.ranges[0][0].subnet": "10.1.0.0/33" is not a CIDR`.
class Fields {
 public:
  // `obj` must outlive this; `path` is the prefix of key names in messages ("" for the top
  // level, "ipam" for the IPAM block). A null `obj` reads as an empty object; any other
  // non-object throws.
  Fields(const nlohmann::json& obj, std::string path);

  bool has(std::string_view key) const;
  std::string key_path(std::string_view key) const;
  const nlohmann::json& object_json() const { return obj_; }

  std::optional<std::string> str(std::string_view key) const;
  std::string str_or(std::string_view key, std::string def) const;
  std::string required_str(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  bool boolean_or(std::string_view key, bool def) const;
  // Integers must be JSON integers (not floats or strings) within [min, max].
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max) const;
  std::optional<uint64_t> uinteger(std::string_view key, uint64_t max) const;
  std::optional<IpAddress> ip(std::string_view key) const;
  // A CIDR; with network_only, host bits are an error ("10.1.0.1/24").
  std::optional<IpNet> cidr(std::string_view key, bool network_only) const;
  std::optional<std::vector<std::string>> str_list(std::string_view key) const;
  // A nested object (null if absent) as Fields with the path extended.
  std::optional<Fields> object(std::string_view key) const;
  // A nested array (absent -> nullopt); throws if the value is not an array.
  const nlohmann::json* array(std::string_view key) const;

  [[noreturn]] void fail(std::string_view key, const std::string& why) const;

 private:
  const nlohmann::json* get(std::string_view key) const;
  const nlohmann::json& obj_;
  std::string path_;
};

// A JSON value quoted for a message, truncated to keep errors readable.
std::string quote_value(const nlohmann::json& v);

}  // namespace cni
