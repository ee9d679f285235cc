#include "bench/spawn_client.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace strait::bench {

namespace {

std::system_error os_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

void write_full(int fd, const void* buf, size_t len) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t put = write(fd, p, len);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) throw os_error("failed to write to strait-bench-spawn");
    p += put;
    len -= static_cast<size_t>(put);
  }
}

void read_full(int fd, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t got = read(fd, p, len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw os_error("failed to read from strait-bench-spawn");
    if (got == 0) throw std::runtime_error("strait-bench-spawn exited unexpectedly");
    p += got;
    len -= static_cast<size_t>(got);
  }
}

void append_u32(std::string& buf, uint32_t v) {
  buf.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void append_string(std::string& buf, std::string_view s) {
  append_u32(buf, static_cast<uint32_t>(s.size()));
  buf.append(s);
}

[[noreturn]] void child_fail(const char* what) {
  std::fprintf(stderr, "strait-bench: starting the spawn server: %s: %s\n", what,
               std::strerror(errno));
  _exit(127);
}

// In the forked child: the same steps as `ip netns exec <netns>`, then exec the server.
[[noreturn]] void exec_server(const std::string& server, const std::string& netns) {
  auto fail = child_fail;
  if (unshare(CLONE_NEWNS) != 0) fail("unshare(CLONE_NEWNS)");
  if (mount("none", "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) fail("mount --make-rslave /");
  int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) fail(netns.c_str());
  close(fd);
  if (umount2("/sys", MNT_DETACH) != 0) fail("umount /sys");
  if (mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) fail("mount sysfs /sys");
  char* argv[] = {const_cast<char*>(server.c_str()), nullptr};
  execv(server.c_str(), argv);
  child_fail(server.c_str());
}

}  // namespace

SpawnClient::SpawnClient(const std::string& server, const std::string& netns) {
  int req[2], rep[2];
  if (pipe2(req, O_CLOEXEC) != 0) throw os_error("failed to create a pipe");
  cni::UniqueFd req_r(req[0]);
  to_.reset(req[1]);
  if (pipe2(rep, O_CLOEXEC) != 0) throw os_error("failed to create a pipe");
  from_.reset(rep[0]);
  cni::UniqueFd rep_w(rep[1]);

  pid_ = fork();
  if (pid_ < 0) throw os_error("failed to fork the spawn server");
  if (pid_ == 0) {
    // dup2 clears O_CLOEXEC on the copies.
    if (dup2(req_r.get(), 0) < 0 || dup2(rep_w.get(), 1) < 0) _exit(127);
    exec_server(server, netns);
  }
}

SpawnClient::~SpawnClient() {
  to_.reset();
  from_.reset();
  if (pid_ > 0) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

Exec SpawnClient::run(const std::string& path, const std::vector<std::string>& env,
                      std::string_view input) {
  std::string req;
  append_u32(req, static_cast<uint32_t>(1 + env.size()));
  append_string(req, path);
  for (const auto& e : env) append_string(req, e);
  append_string(req, input);
  write_full(to_.get(), req.data(), req.size());

  Exec r;
  read_full(from_.get(), &r.stats, sizeof r.stats);
  r.out.resize(r.stats.out_len);
  r.err.resize(r.stats.err_len);
  if (!r.out.empty()) read_full(from_.get(), r.out.data(), r.out.size());
  if (!r.err.empty()) read_full(from_.get(), r.err.data(), r.err.size());
  return r;
}

}  // namespace strait::bench
