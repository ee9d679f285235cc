#include "libcni/core/log.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

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
  // The file may hold container IDs and addresses: keep it private.
  mode_t old = umask(077);
  auto f = std::make_unique<std::ofstream>(path, std::ios::app);
  umask(old);
  if (!*f) {
    warning("failed to open logFile \"" + path + "\": " + std::strerror(errno));
    return;
  }
  file_ = std::move(f);
  sink_ = file_.get();
}

void Logger::set_level(std::string_view name) {
  if (name == "error" || name == "panic") level_ = Level::kError;
  if (name == "warning" || name == "warn") level_ = Level::kWarning;
  if (name == "info") level_ = Level::kInfo;
  if (name == "debug") level_ = Level::kDebug;
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
  std::lock_guard<std::mutex> lock(mu_);
  *sink_ << stamp << millis << "Z " << level_name(level) << " " << (tag_.empty() ? "" : tag_ + ": ")
         << msg << '\n';
  sink_->flush();
}

}  // namespace cni
