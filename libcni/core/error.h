#pragma once

#include <stdexcept>
#include <string>

namespace cni {

// Error codes of the CNI spec (SPEC.md "Error"); 100 and above are plugin specific.
inline constexpr int kErrIncompatibleVersion = 1;
inline constexpr int kErrUnsupportedField = 2;
inline constexpr int kErrUnknownContainer = 3;
inline constexpr int kErrInvalidEnv = 4;
inline constexpr int kErrIo = 5;
inline constexpr int kErrDecode = 6;
inline constexpr int kErrInvalidConfig = 7;
inline constexpr int kErrTryAgainLater = 11;
inline constexpr int kErrNotAvailable = 50;
inline constexpr int kErrNotAvailableLimited = 51;
inline constexpr int kErrInternal = 999;

// A protocol or configuration fault. Thrown anywhere, caught only by skel, which prints
// {"cniVersion","code","msg","details"} on stdout and exits 1.
class Error : public std::runtime_error {
 public:
  Error(int code, std::string msg, std::string details = {})
      : std::runtime_error(msg), code_(code), details_(std::move(details)) {}

  int code() const { return code_; }
  std::string msg() const { return what(); }
  const std::string& details() const { return details_; }

 private:
  int code_;
  std::string details_;
};

}  // namespace cni
