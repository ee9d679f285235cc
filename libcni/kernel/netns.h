#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "libcni/core/fd.h"

namespace cni {

// An open network namespace: a bind mount under /run/netns, /proc/<pid>/ns/net, or any
// other nsfs file. Opening checks that the file really is a network namespace (like
// upstream ns.GetNS), so a stale /run/netns entry or a typo fails here and not in setns.
class Netns {
 public:
  // Throws std::system_error: `failed to open netns "/run/netns/x": No such file or
  // directory`, or EINVAL `failed to open netns "/etc/hosts": not a network namespace`.
  static Netns open(const std::string& path);
  // Like open(), but a path that does not exist (ENOENT) gives nullopt: DEL treats a
  // vanished netns as already cleaned up. Other failures still throw.
  static std::optional<Netns> try_open(const std::string& path);
  // The calling thread's namespace (setns is per thread; plugins are single-threaded).
  static Netns current();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  ino_t inode() const { return ino_; }
  // True when both handles name the same namespace (same nsfs device and inode).
  bool same_as(const Netns& other) const { return dev_ == other.dev_ && ino_ == other.ino_; }

 private:
  Netns(UniqueFd fd, std::string path, dev_t dev, ino_t ino)
      : fd_(std::move(fd)), path_(std::move(path)), dev_(dev), ino_(ino) {}
  // Returns nullopt only for ENOENT when `missing_ok`.
  static std::optional<Netns> open_checked(const std::string& path, bool missing_ok);

  UniqueFd fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// The pod's CNI_NETNS as ADD and CHECK open it: a path that is not an openable network
// namespace is the runtime's fault, cni::Error kErrInvalidEnv "CNI_NETNS is invalid: <why>".
Netns open_pod_netns(const std::string& path);

// Moves the calling thread into `target` for the guard's lifetime. If it cannot switch
// back, it logs to stderr and aborts: a plugin must never go on in the wrong namespace.
// Netlink sockets opened inside stay bound to `target` after the guard ends (see NlSocket).
class NetnsGuard {
 public:
  // Throws std::system_error `failed to enter netns "/run/netns/x": ...`.
  explicit NetnsGuard(const Netns& target);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  Netns original_;
};

}  // namespace cni
