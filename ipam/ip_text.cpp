#include "ipam/ip_text.h"

#include <array>
#include <cstdio>

namespace ipam {

std::string go_ip_string(const cni::IpAddress& a) {
  if (!a.is_v6()) return a.str();
  const uint8_t* b = a.data();
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

}  // namespace ipam
