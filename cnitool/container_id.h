#pragma once

#include <string>
#include <string_view>

namespace cni::tool {

// Go's filepath.Abs: `path` joined to `cwd` when relative, then cleaned lexically ("." and
// ".." resolved, repeated and trailing slashes removed); symlinks are not followed.
std::string absolute_path(std::string_view path, std::string_view cwd);

// The container ID cnitool uses for a netns: "cnitool-" + the first 10 bytes (20 hex digits)
// of SHA-512 over the absolute netns path, as upstream cnitool derives it, so both tools
// address the same attachment (and the same cache entry).
std::string container_id_for_netns(std::string_view absolute_netns_path);

}  // namespace cni::tool
