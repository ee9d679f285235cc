#include "ipam/host_local/resolv_conf.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "libcni/core/fd.h"

namespace ipam {

namespace {

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !space(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

cni::Dns parse_resolv_conf(std::string_view text) {
  cni::Dns dns;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto fields = split_fields(line);
    if (fields.size() < 2 || fields[0][0] == '#' || fields[0][0] == ';') continue;
    auto rest = [&](std::vector<std::string>& to) {
      for (size_t i = 1; i < fields.size(); ++i) to.emplace_back(fields[i]);
    };
    if (fields[0] == "nameserver") {
      dns.nameservers.emplace_back(fields[1]);
    } else if (fields[0] == "domain") {
      dns.domain = std::string(fields[1]);
    } else if (fields[0] == "search") {
      rest(dns.search);
    } else if (fields[0] == "options") {
      rest(dns.options);
    }
  }
  return dns;
}

cni::Dns read_resolv_conf(const std::string& path) {
  auto fail = [&](int err) {
    throw std::system_error(err, std::generic_category(),
                            "failed to read resolvConf \"" + path + "\"");
  };
  cni::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail(errno);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // A resolv.conf is a few hundred bytes; refuse to buffer a device or a huge file.
    if (text.size() > (1u << 20)) fail(EFBIG);
  }
  return parse_resolv_conf(text);
}

}  // namespace ipam
