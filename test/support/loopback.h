#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "libcni/core/fd.h"

namespace strait::test {

// A TCP socket listening on 127.0.0.1 at a free port: the tests' scripted servers and relays.
struct Loopback {
  cni::UniqueFd fd;
  int port = 0;
};

inline Loopback listen_loopback(int backlog) {
  Loopback l;
  l.fd.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (!l.fd || bind(l.fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      listen(l.fd.get(), backlog) != 0) {
    throw std::system_error(errno, std::generic_category(), "listen on 127.0.0.1");
  }
  l.port = ntohs(a.sin_port);
  return l;
}

}  // namespace strait::test
