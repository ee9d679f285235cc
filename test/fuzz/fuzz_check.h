#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include "libcni/error.h"

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

}  // namespace strait::fuzz
