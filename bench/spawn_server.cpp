// strait-bench-spawn: the fork server of strait-bench (see spawn_protocol.h for why).
// Reads requests on stdin, runs each executable exactly as a container runtime does
// (posix_spawn, exactly the given environment, the request's bytes on a stdin pipe, stdout
// and stderr collected from pipes), waits with wait4 and writes back the exit status,
// the wall time and the rusage. Linked statically and kept small: its own peak RSS is the
// floor of every figure it reports. Runs in whatever namespaces strait-bench put it in.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/spawn_protocol.h"

namespace {

using strait::bench::kMaxFrame;
using strait::bench::SpawnReply;

bool read_full(int fd, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t got = read(fd, p, len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    len -= static_cast<size_t>(got);
  }
  return true;
}

bool write_full(int fd, const void* buf, size_t len) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t put = write(fd, p, len);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    p += put;
    len -= static_cast<size_t>(put);
  }
  return true;
}

bool read_string(int fd, std::string& s) {
  uint32_t len = 0;
  if (!read_full(fd, &len, sizeof len) || len > kMaxFrame) return false;
  s.resize(len);
  return len == 0 || read_full(fd, s.data(), len);
}

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

int64_t micros(const timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1000000 + static_cast<int64_t>(tv.tv_usec);
}

struct Pipe {
  int r = -1;
  int w = -1;
  bool open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    r = fds[0];
    w = fds[1];
    return true;
  }
};

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Runs one request; false only when the pipes to the client broke.
bool serve_one(const std::vector<std::string>& strings, const std::string& input) {
  SpawnReply reply;
  std::string out, err;
  std::vector<char*> argv{const_cast<char*>(strings[0].c_str()), nullptr};
  std::vector<char*> envp;
  for (size_t i = 1; i < strings.size(); ++i) envp.push_back(const_cast<char*>(strings[i].c_str()));
  envp.push_back(nullptr);

  Pipe in, o, e;
  if (!in.open() || !o.open() || !e.open()) {
    perror("strait-bench-spawn: pipe");
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in.r, 0);
  posix_spawn_file_actions_adddup2(&fa, o.w, 1);
  posix_spawn_file_actions_adddup2(&fa, e.w, 2);

  // The child starts with default signal dispositions and an empty mask, as under a runtime
  // (the server ignores SIGPIPE, and ignored signals would survive the exec).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t pipe_only, none;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &pipe_only);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  const uint64_t start = now_ns();
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  close_fd(in.r);
  close_fd(o.w);
  close_fd(e.w);
  if (rc != 0) {
    err = std::string("failed to execute \"") + argv[0] + "\": " + strerror(rc);
    reply.exit_code = 127;
    close_fd(in.w);
    close_fd(o.r);
    close_fd(e.r);
  } else {
    size_t written = 0;
    if (input.empty()) close_fd(in.w);
    if (in.w >= 0) fcntl(in.w, F_SETFL, O_NONBLOCK);
    char buf[16384];
    while (o.r >= 0 || e.r >= 0) {
      pollfd pfds[3] = {{o.r, POLLIN, 0}, {e.r, POLLIN, 0}, {in.w, POLLOUT, 0}};
      if (poll(pfds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        int& fd = i == 0 ? o.r : e.r;
        if (fd < 0 || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t got = read(fd, buf, sizeof buf);
        if (got > 0) {
          (i == 0 ? out : err).append(buf, static_cast<size_t>(got));
        } else if (got == 0 || errno != EINTR) {
          close_fd(fd);
        }
      }
      if (in.w >= 0 && (pfds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t put = write(in.w, input.data() + written, input.size() - written);
        if (put > 0) written += static_cast<size_t>(put);
        if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
          close_fd(in.w);
        }
      }
    }
    close_fd(in.w);
    int status = 0;
    rusage ru{};
    while (wait4(pid, &status, 0, &ru) < 0) {
      if (errno != EINTR) {
        perror("strait-bench-spawn: wait4");
        return false;
      }
    }
    reply.elapsed_ns = now_ns() - start;
    reply.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    reply.maxrss_kb = ru.ru_maxrss;
    reply.utime_us = micros(ru.ru_utime);
    reply.stime_us = micros(ru.ru_stime);
    reply.minflt = ru.ru_minflt;
    reply.nvcsw = ru.ru_nvcsw;
    reply.nivcsw = ru.ru_nivcsw;
  }
  reply.out_len = static_cast<uint32_t>(out.size());
  reply.err_len = static_cast<uint32_t>(err.size());
  return write_full(1, &reply, sizeof reply) && write_full(1, out.data(), out.size()) &&
         write_full(1, err.data(), err.size());
}

}  // namespace

int main() {
  // A plugin that exits without reading its stdin must not kill the server.
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> strings;
  std::string input;
  for (;;) {
    uint32_t count = 0;
    if (!read_full(0, &count, sizeof count)) return 0;  // the client closed the pipe: done
    if (count == 0 || count > 4096) {
      fprintf(stderr, "strait-bench-spawn: bad request (%u strings)\n", count);
      return 1;
    }
    strings.resize(count);
    for (auto& s : strings) {
      if (!read_string(0, s)) return 1;
    }
    if (!read_string(0, input)) return 1;
    if (!serve_one(strings, input)) return 1;
  }
}
