#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cni {

// The spec versions every Strait executable speaks, oldest first.
const std::vector<std::string>& supported_versions();

struct SemVer {
  int major = 0;
  int minor = 0;
  int patch = 0;
  auto operator<=>(const SemVer&) const = default;
};

// Parses "1.0.0" (also "1.0"); throws Error{kErrIncompatibleVersion} on anything else.
SemVer parse_version(std::string_view v);

// true when v >= min; both must parse.
bool version_at_least(std::string_view v, std::string_view min);

// Throws Error{kErrIncompatibleVersion} naming v when it is not one of `supported`.
void require_supported_version(std::string_view v, const std::vector<std::string>& supported);

}  // namespace cni
