#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "libcni/core/error.h"

namespace strait::unit {

// Returns the message of the kErrInvalidConfig error `fn` throws; fails if it throws none.
template <class Fn>
std::string config_error(Fn fn) {
  try {
    fn();
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInvalidConfig);
    return e.msg();
  }
  FAIL("no error thrown");
  return "";
}

}  // namespace strait::unit
