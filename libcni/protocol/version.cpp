#include "libcni/protocol/version.h"

#include <charconv>

#include "libcni/core/error.h"

namespace cni {

const std::vector<std::string>& supported_versions() {
  static const std::vector<std::string> kVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
  return kVersions;
}

SemVer parse_version(std::string_view v) {
  SemVer out;
  int* parts[] = {&out.major, &out.minor, &out.patch};
  std::string_view rest = v;
  size_t n = 0;
  while (n < 3) {
    const char* begin = rest.data();
    const char* end = rest.data() + rest.size();
    auto [ptr, ec] = std::from_chars(begin, end, *parts[n]);
    if (ec != std::errc() || ptr == begin || *parts[n] < 0) break;
    ++n;
    rest.remove_prefix(static_cast<size_t>(ptr - begin));
    if (rest.empty()) break;
    if (rest.front() != '.') {
      n = 0;
      break;
    }
    rest.remove_prefix(1);
  }
  if (n < 2 || !rest.empty()) {
    throw Error(kErrIncompatibleVersion, "invalid cniVersion \"" + std::string(v) + "\"");
  }
  return out;
}

bool version_at_least(std::string_view v, std::string_view min) {
  return parse_version(v) >= parse_version(min);
}

void require_supported_version(std::string_view v, const std::vector<std::string>& supported) {
  for (const auto& s : supported) {
    if (s == v) return;
  }
  std::string list;
  for (const auto& s : supported) list += (list.empty() ? "" : ", ") + s;
  throw Error(kErrIncompatibleVersion,
              "incompatible CNI version \"" + std::string(v) + "\": supported are " + list);
}

}  // namespace cni
