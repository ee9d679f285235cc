#pragma once

#include <optional>
#include <string>

namespace cni {

// Reads the file at `path` to its end through a descriptor opened O_RDONLY | O_CLOEXEC |
// `extra_flags` (e.g. O_NOFOLLOW), so that a plugin spawned by another thread while it is open
// never inherits it (an ifstream cannot be opened O_CLOEXEC). nullopt, with errno set, when the
// open fails: the caller decides which errno means "absent". A read error throws
// std::system_error `failed to read "/etc/cni/net.d/10-a.conflist": Is a directory`.
std::optional<std::string> read_whole_file(const std::string& path, int extra_flags = 0);

}  // namespace cni
