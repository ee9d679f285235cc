#pragma once

#include <cstdint>

// The pipe protocol between strait-bench and strait-bench-spawn, its fork server.
//
// Why a server: a child's ru_maxrss starts at the parent's peak RSS. The kernel records the
// old mm's high-water mark when the child execs (fs/exec.c, exec_mmap), and a vfork child
// (posix_spawn, Go's os/exec) shares the parent's mm. A plugin spawned by the bench client
// itself (libstdc++, libnl, nlohmann::json: several MB) would report at least the client's
// peak. The server is a small static binary, so what wait4 reports is the plugin's own peak
// (the server's few hundred KB are the floor, and the report prints it).
//
// Request (client -> server), native byte order:
//   u32 count, then `count` strings (u32 length + bytes): [0] the executable's path, the
//   rest "KEY=VALUE" environment entries; then u32 length + the bytes fed to stdin.
// Reply (server -> client): SpawnReply, then out_len bytes of stdout, err_len of stderr.
namespace strait::bench {

inline constexpr uint32_t kMaxFrame = 64u << 20;  // sanity limit on any length field

struct SpawnReply {
  int32_t exit_code = 0;  // 128 + signal when killed; 127 when the exec failed
  uint32_t out_len = 0;
  uint32_t err_len = 0;
  uint32_t reserved = 0;
  uint64_t elapsed_ns = 0;  // CLOCK_MONOTONIC from just before posix_spawn to wait4's return
  // wait4's rusage: of the child and every descendant it waited for (the kernel fills it
  // with RUSAGE_BOTH), so maxrss is the largest peak of any one of them.
  int64_t maxrss_kb = 0;
  int64_t utime_us = 0;
  int64_t stime_us = 0;
  int64_t minflt = 0;
  int64_t nvcsw = 0;   // voluntary context switches (blocking: netlink, locks, RCU waits)
  int64_t nivcsw = 0;  // involuntary ones (preempted: the machine's load)
};

}  // namespace strait::bench
