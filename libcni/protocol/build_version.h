#pragma once

#include <string_view>

namespace cni {

// The version this build was made from (cmake/version.cmake: `git describe`, Debian-valid,
// e.g. "0.1.0~git123.gabc1234"). Its definition is generated at every build, so a binary
// always says which commit it is.
std::string_view build_version();

}  // namespace cni
