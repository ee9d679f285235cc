#pragma once

#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "libcni/core/fd.h"

namespace cni {

// Logs never go to stdout (stdout carries the result). Safe to use from several threads. A Logger
// writes to the stream it is given (stderr in main) or, when the config names a logFile, appends
// there instead.
class Logger {
 public:
  enum class Level { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

  explicit Logger(std::ostream& sink, Level level = Level::kWarning);
  // Redirects to `path` (append, created 0600); on failure keeps the current sink and says
  // so there. The descriptor is close-on-exec: IPAM delegates and the plugins cnitool runs
  // must not inherit it (each opens the logFile of its own config).
  void open_file(const std::string& path);
  void set_level(Level level) { level_ = level; }
  // "error", "warning", "info", "debug" (also "panic" -> error, "warn"); false (and the level
  // unchanged) for any other name.
  bool set_level(std::string_view name);
  // Tag prepended to every line, e.g. "macvlan ADD network=n container=8f2c... ifname=net1".
  void set_tag(std::string tag) { tag_ = std::move(tag); }

  void error(std::string_view msg) { write(Level::kError, msg); }
  void warning(std::string_view msg) { write(Level::kWarning, msg); }
  void info(std::string_view msg) { write(Level::kInfo, msg); }
  void debug(std::string_view msg) { write(Level::kDebug, msg); }

 private:
  void write(Level level, std::string_view msg);
  std::ostream* sink_;
  UniqueFd file_;  // when set, lines go here instead of sink_
  std::mutex mu_;
  Level level_;
  std::string tag_;
};

}  // namespace cni
