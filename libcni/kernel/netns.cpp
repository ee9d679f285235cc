#include "libcni/kernel/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "libcni/core/error.h"

namespace cni {

namespace {

[[noreturn]] void throw_open_error(int err, const std::string& path, const char* why = nullptr) {
  std::string msg = "failed to open netns \"" + path + "\"";
  if (why) {
    // A custom reason reads better than the bare errno text; keep the errno as the code.
    throw std::system_error(err, std::system_category(), msg + ": " + why);
  }
  throw std::system_error(err, std::system_category(), msg);
}

}  // namespace

std::optional<Netns> Netns::open_checked(const std::string& path, bool missing_ok) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT && missing_ok) return std::nullopt;
    throw_open_error(err, path);
  }
  struct statfs fs {};
  if (fstatfs(fd.get(), &fs) != 0) throw_open_error(errno, path);
  // nsfs since Linux 3.19; procfs before (ns files lived in /proc/<pid>/ns).
  if (fs.f_type != NSFS_MAGIC && fs.f_type != PROC_SUPER_MAGIC) {
    throw_open_error(EINVAL, path, "not a network namespace");
  }
  // Other namespace types live on nsfs too (/proc/self/ns/mnt): ask the kernel (4.11+).
  const int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type >= 0 && type != CLONE_NEWNET) {
    throw_open_error(EINVAL, path, "not a network namespace");
  }
  if (type < 0 && errno != ENOTTY && errno != EINVAL) throw_open_error(errno, path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw_open_error(errno, path);
  return Netns(std::move(fd), path, st.st_dev, st.st_ino);
}

Netns Netns::open(const std::string& path) { return *open_checked(path, false); }

std::optional<Netns> Netns::try_open(const std::string& path) { return open_checked(path, true); }

Netns open_pod_netns(const std::string& path) {
  try {
    return Netns::open(path);
  } catch (const std::system_error& e) {
    throw Error(kErrInvalidEnv, std::string("CNI_NETNS is invalid: ") + e.what());
  }
}

Netns Netns::current() {
  // /proc/thread-self (3.17+) names the calling thread, not the process's main thread.
  if (access("/proc/thread-self/ns/net", F_OK) == 0) return open("/proc/thread-self/ns/net");
  return open("/proc/self/task/" + std::to_string(gettid()) + "/ns/net");
}

NetnsGuard::NetnsGuard(const Netns& target) : original_(Netns::current()) {
  if (setns(target.fd(), CLONE_NEWNET) != 0) {
    throw std::system_error(errno, std::system_category(),
                            "failed to enter netns \"" + target.path() + "\"");
  }
}

NetnsGuard::~NetnsGuard() {
  if (setns(original_.fd(), CLONE_NEWNET) != 0) {
    // Going on would configure the wrong namespace (possibly the host's): stop here.
    std::fprintf(stderr, "fatal: failed to return to netns \"%s\": %s\n", original_.path().c_str(),
                 std::strerror(errno));
    std::abort();
  }
}

}  // namespace cni
