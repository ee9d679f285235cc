#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/error.h"

namespace strait::fuzz {

// Runs `body`: a cni::Error is the expected outcome of bad input (it becomes the error JSON
// with its code); any other exception means an internal fault leaked out of a parser (it
// would reach the runtime as code 999 with a library's message) and is a finding.
template <typename F>
void expect_only_cni_errors(F&& body) {
  try {
    body();
  } catch (const cni::Error&) {
  } catch (const std::bad_alloc&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-CNI exception escaped: %s\n", e.what());
    std::abort();
  }
}

// The first `n` lines of `s` (fewer lines: the rest are empty), for targets whose input is a
// few text fields.
inline std::vector<std::string> first_lines(std::string_view s, size_t n) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (out.size() < n) {
    size_t end = s.find('\n', pos);
    out.emplace_back(s.substr(pos, end == std::string_view::npos ? s.npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  out.resize(n);
  return out;
}

// An invariant of the code under test: a violation is a finding (abort, so libFuzzer keeps
// the input).
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace strait::fuzz
