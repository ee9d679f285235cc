#include "cnitool/container_id.h"

#include <vector>

#include "libcni/core/sha512.h"

namespace cni::tool {

std::string absolute_path(std::string_view path, std::string_view cwd) {
  std::string joined = !path.empty() && path.front() == '/'
                           ? std::string(path)
                           : std::string(cwd) + "/" + std::string(path);
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= joined.size()) {
    size_t next = joined.find('/', pos);
    if (next == std::string::npos) next = joined.size();
    std::string part = joined.substr(pos, next - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();  // ".." at the root stays at the root
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = next + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::string container_id_for_netns(std::string_view absolute_netns_path) {
  auto digest = sha512(absolute_netns_path);
  return "cnitool-" + to_hex(digest.data(), 10);
}

}  // namespace cni::tool
