#include "libcni/kernel/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/core/fd.h"

namespace cni {

std::string normalize_sysctl_name(std::string_view name) {
  std::string out(name);
  const auto first_sep = out.find_first_of("./");
  if (first_sep != std::string::npos && out[first_sep] == '.') {
    for (char& c : out) {
      if (c == '.') {
        c = '/';
      } else if (c == '/') {
        c = '.';
      }
    }
  }
  auto invalid = [&](const char* why) {
    return Error(kErrInvalidConfig, "invalid sysctl name \"" + std::string(name) + "\"", why);
  };
  if (out.empty()) throw invalid("the name is empty");
  if (out.find('\0') != std::string::npos) throw invalid("the name contains a NUL byte");
  if (out.front() == '/') throw invalid("the name must be relative to /proc/sys");
  size_t start = 0;
  while (true) {
    const size_t end = out.find('/', start);
    const std::string_view part =
        std::string_view(out).substr(start, end == std::string::npos ? end : end - start);
    if (part.empty() || part == "." || part == "..") {
      throw invalid("empty, \".\" and \"..\" parts are not allowed");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

namespace {
std::string sysctl_path(std::string_view root, const std::string& normalized) {
  std::string path(root);
  if (path.empty() || path.back() != '/') path += '/';
  return path + normalized;
}
}  // namespace

std::string read_sysctl(std::string_view name, std::string_view root) {
  const std::string key = normalize_sysctl_name(name);
  const std::string what = "failed to read sysctl \"" + key + "\"";
  UniqueFd fd(::open(sysctl_path(root, key).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::system_category(), what);
  std::string value;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::system_category(), what);
    }
    if (n == 0) break;
    value.append(buf, static_cast<size_t>(n));
  }
  if (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

void write_sysctl(std::string_view name, std::string_view value, std::string_view root) {
  const std::string key = normalize_sysctl_name(name);
  const std::string what =
      "failed to write sysctl \"" + key + "\" = \"" + std::string(value) + "\"";
  UniqueFd fd(::open(sysctl_path(root, key).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::system_category(), what);
  // O_TRUNC as upstream (os.WriteFile) for regular files; procfs ignores it. One write():
  // procfs parses each write on its own.
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw std::system_error(errno, std::system_category(), what);
  if (static_cast<size_t>(n) != value.size()) {
    throw std::system_error(EIO, std::system_category(), what + " (short write)");
  }
}

}  // namespace cni
