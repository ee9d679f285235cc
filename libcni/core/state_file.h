#pragma once

#include <optional>
#include <string>
#include <string_view>

// Small state files a plugin keeps between ADD and DEL (sriov's VF records): never seen half
// written, whatever kills the process. A write goes to `<path>.tmp`, is fsync'ed and renamed
// over `path`, and the directory is fsync'ed, so a reader finds the old content or the new
// one. One writer per path at a time: callers hold a lock (or are the only process that can
// write it, as for one attachment, which the runtime never runs twice at once); a `.tmp`
// that a killed writer left is simply overwritten by the next write and removed with the
// file.
namespace cni {

// mkdir -p with `mode` for the directories it creates. Throws std::system_error naming the
// directory.
void make_dirs(const std::string& dir, unsigned mode = 0700);

// Writes `content` to `path` (mode 0600), creating its directory (0700). Throws
// std::system_error `failed to write "/var/lib/cni/sriov/pci/0000:af:06.0": No space left`.
void write_state_file(const std::string& path, std::string_view content);
// The content, nullopt when the file does not exist; other failures throw std::system_error.
std::optional<std::string> read_state_file(const std::string& path);
// Removes `path` (and a leftover `<path>.tmp`); false when it did not exist.
bool remove_state_file(const std::string& path);

}  // namespace cni
