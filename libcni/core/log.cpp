#include "libcni/core/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace cni {

namespace {
const char* level_name(Logger::Level l) {
  switch (l) {
    case Logger::Level::kError:
      return "error";
    case Logger::Level::kWarning:
      return "warning";
    case Logger::Level::kInfo:
      return "info";
    case Logger::Level::kDebug:
      return "debug";
  }
  return "?";
}
}  // namespace

Logger::Logger(std::ostream& sink, Level level) : sink_(&sink), level_(level) {}

void Logger::open_file(const std::string& path) {
  // The file may hold container IDs and addresses: keep it private. The mode replaces the
  // umask dance an ofstream needs (umask is per process; other threads may be creating files).
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) {
    warning("failed to open logFile \"" + path + "\": " + std::strerror(errno));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  file_ = std::move(fd);
}

bool Logger::set_level(std::string_view name) {
  if (name == "error" || name == "panic") {
    level_ = Level::kError;
  } else if (name == "warning" || name == "warn") {
    level_ = Level::kWarning;
  } else if (name == "info") {
    level_ = Level::kInfo;
  } else if (name == "debug") {
    level_ = Level::kDebug;
  } else {
    return false;
  }
  return true;
}

void Logger::write(Level level, std::string_view msg) {
  if (level > level_) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[24];
  snprintf(millis, sizeof millis, ".%03ld", ts.tv_nsec / 1000000);
  std::string line = std::string(stamp) + millis + "Z " + level_name(level) + " " +
                     (tag_.empty() ? "" : tag_ + ": ") + std::string(msg) + '\n';
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) {
    *sink_ << line;
    sink_->flush();
    return;
  }
  // One write per line (O_APPEND): lines of plugins logging to one file do not interleave.
  // A failed write loses the line; a logger has nowhere to report it.
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(file_.get(), line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace cni
