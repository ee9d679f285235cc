#include "libcni/process/invoke.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <system_error>
#include <thread>

#include "libcni/core/error.h"
#include "libcni/core/fd.h"

namespace cni {

namespace {

using Clock = std::chrono::steady_clock;

std::system_error os_error(const std::string& what, int err = errno) {
  return std::system_error(err, std::generic_category(), what);
}

void make_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw os_error("failed to create a pipe");
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
}

// posix_spawn file actions, released on every path.
class FileActions {
 public:
  FileActions() {
    if (int rc = posix_spawn_file_actions_init(&fa_); rc != 0) {
      throw os_error("failed to prepare a child's file actions", rc);
    }
  }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &fa_; }
  // The child's descriptor `child_fd` becomes `fd`.
  void dup2(int fd, int child_fd, const std::string& path) {
    if (int rc = posix_spawn_file_actions_adddup2(&fa_, fd, child_fd); rc != 0) {
      throw os_error("failed to prepare the standard streams of \"" + path + "\"", rc);
    }
  }

 private:
  posix_spawn_file_actions_t fa_;
};

// SIGPIPE blocked in this thread, restored on every path: a plugin that exits without reading
// stdin must not kill us. A SIGPIPE raised meanwhile is discarded first.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_set_);
  }
  ~SigpipeBlock() {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_set_, old_set_;
};

// A started child until it is reaped. Destroying it unreaped (an exception, or a StartedExec
// that is never finished) kills and reaps it, so no path leaves a child blocked on a pipe
// nobody drains, or a zombie.
class Child {
 public:
  Child(pid_t pid, std::string path) : pid_(pid), path_(std::move(path)) {}
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void kill() { ::kill(pid_, SIGKILL); }
  // Its wait status once it has exited; nullopt while it runs (with `block`, waits).
  std::optional<int> reap(bool block) {
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
      if (r == pid_) {
        pid_ = 0;
        return status;
      }
      if (r == 0) return std::nullopt;
      if (errno != EINTR) throw os_error("failed to wait for \"" + path_ + "\"");
    }
  }

 private:
  pid_t pid_;
  std::string path_;
};

// Milliseconds until `deadline` for poll(), rounded up; -1 without a deadline.
int poll_timeout(const std::optional<Clock::time_point>& deadline) {
  if (!deadline) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

// Keeps a child started to run beside its parent off the parent's CPU for its first
// kOffThisCpuFor. posix_spawn's vfork() starts the child on the parent's CPU, and about half
// the time the scheduler left it there after its exec: the two took turns on one CPU while
// another was idle (vxlan ADD with its IPAM: docs/benchmarks.md, "vxlan"). The child may use
// every CPU the parent may use but the one the parent is on (nothing changes when that is the
// only one). It gets the parent's whole set back after kOffThisCpuFor, while the parent
// waits for it: an IPAM takes 1-2 ms on an idle node, and on a busy one it is kept from the
// parent's CPU, which the parent leaves idle once it waits, for that long at most. Given back
// as soon as the parent waits, the child lost most of what this gains (4.47 and 4.10 ms per
// vxlan ADD against 3.87 and 3.57 in the same rotations), and given back when it closes its
// output (it is then nearly always exiting), about 0.3 ms (3.96 and 4.03 against 3.67 and
// 3.75; why, not found). A child that ends within its time off never needs the set back. Best
// effort: a failure changes nothing but where the child runs.
constexpr std::chrono::milliseconds kOffThisCpuFor{5};

class OffThisCpu {
 public:
  explicit OffThisCpu(pid_t child) : child_(child), until_(Clock::now() + kOffThisCpuFor) {
    const int here = sched_getcpu();
    if (here < 0 || sched_getaffinity(0, sizeof allowed_, &allowed_) != 0 ||
        CPU_COUNT(&allowed_) < 2 || !CPU_ISSET(here, &allowed_)) {
      return;
    }
    cpu_set_t others = allowed_;
    CPU_CLR(here, &others);
    active_ = sched_setaffinity(child_, sizeof others, &others) == 0;
  }
  bool active() const { return active_; }
  Clock::time_point until() const { return until_; }
  // The parent's whole set again.
  void release() {
    if (active_) sched_setaffinity(child_, sizeof allowed_, &allowed_);
    active_ = false;
  }

 private:
  pid_t child_;
  Clock::time_point until_;
  cpu_set_t allowed_{};
  bool active_ = false;
};

// A child spawn_start() started: its pipes, the stdin not yet written, its deadline.
class Spawned final : public StartedExec {
 public:
  // `beside`: the caller goes on working while the child runs (spawn_start), see OffThisCpu.
  Spawned(const std::vector<std::string>& args, const EnvMap& env, std::string_view input,
          const SpawnOptions& options, bool beside);
  ExecResult finish() override;

 private:
  // Writes what the stdin pipe takes now; closes it once everything is written or the child
  // stopped reading. Call with SIGPIPE blocked.
  void feed();
  // When finish()'s polls return at the latest: the deadline, or before it the end of the
  // child's time off this CPU, whose set it gives back once that has passed.
  std::optional<Clock::time_point> next_wake();

  std::string path_;
  std::string input_;
  size_t written_ = 0;
  UniqueFd in_w_, out_r_, err_r_;
  std::optional<Clock::time_point> deadline_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::optional<Child> child_;
  std::optional<OffThisCpu> off_this_cpu_;
};

Spawned::Spawned(const std::vector<std::string>& args, const EnvMap& env, std::string_view input,
                 const SpawnOptions& options, bool beside)
    : path_(args.at(0)), input_(input), timeout_(options.timeout) {
  UniqueFd in_r, out_w, err_w;
  make_pipe(in_r, in_w_);
  make_pipe(out_r_, out_w);
  make_pipe(err_r_, err_w);
  if (input_.empty()) {
    in_w_.reset();  // the child reads EOF at once
  } else if (fcntl(in_w_.get(), F_SETFL, O_NONBLOCK) != 0) {
    // A blocking write would deadlock with a child that writes before it reads.
    throw os_error("failed to make the stdin pipe of \"" + path_ + "\" non-blocking");
  }

  FileActions fa;
  fa.dup2(in_r.get(), 0, path_);
  fa.dup2(out_w.get(), 1, path_);
  fa.dup2(err_w.get(), 2, path_);

  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_copies = args;
  std::vector<char*> argv;
  for (auto& a : arg_copies) argv.push_back(a.data());
  argv.push_back(nullptr);

  if (options.timeout) deadline_ = Clock::now() + *options.timeout;
  pid_t pid = 0;
  if (int rc = posix_spawn(&pid, path_.c_str(), fa.get(), nullptr, argv.data(), envp.data());
      rc != 0) {
    throw os_error("failed to execute \"" + path_ + "\"", rc);
  }
  child_.emplace(pid, path_);
  if (beside) off_this_cpu_.emplace(pid);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (in_w_) {
    const SigpipeBlock no_sigpipe;
    feed();
  }
}

void Spawned::feed() {
  for (;;) {
    const ssize_t put = write(in_w_.get(), input_.data() + written_, input_.size() - written_);
    if (put > 0) written_ += static_cast<size_t>(put);
    if (written_ == input_.size() || (put < 0 && errno != EAGAIN && errno != EINTR)) {
      in_w_.reset();
      return;
    }
    if (put < 0 && errno == EAGAIN) return;
  }
}

std::optional<Clock::time_point> Spawned::next_wake() {
  if (!off_this_cpu_ || !off_this_cpu_->active()) return deadline_;
  if (Clock::now() >= off_this_cpu_->until()) {
    off_this_cpu_->release();
    return deadline_;
  }
  return deadline_ ? std::min(*deadline_, off_this_cpu_->until()) : off_this_cpu_->until();
}

ExecResult Spawned::finish() {
  // Feed stdin and drain both outputs together so that neither side blocks on a full pipe.
  ExecResult result;
  std::array<char, 65536> buf;
  const SigpipeBlock no_sigpipe;
  bool expired = false;
  while (out_r_ || err_r_) {
    std::array<pollfd, 3> pfds{};
    pfds[0] = {out_r_ ? out_r_.get() : -1, POLLIN, 0};
    pfds[1] = {err_r_ ? err_r_.get() : -1, POLLIN, 0};
    pfds[2] = {in_w_ ? in_w_.get() : -1, POLLOUT, 0};
    const int ready = poll(pfds.data(), pfds.size(), poll_timeout(next_wake()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw os_error("failed to wait for the output of \"" + path_ + "\"");
    }
    if (ready == 0 && (!deadline_ || Clock::now() < *deadline_)) continue;  // time off over
    if (ready == 0) {  // the deadline has passed
      expired = true;
      break;
    }
    for (size_t i = 0; i < 2; ++i) {
      UniqueFd& fd = i == 0 ? out_r_ : err_r_;
      if (!fd || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = read(fd.get(), buf.data(), buf.size());
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf.data(), static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fd.reset();
      }
    }
    if (in_w_ && (pfds[2].revents & (POLLOUT | POLLERR | POLLHUP))) feed();
  }
  in_w_.reset();

  // Output is closed; the child may still run (it closed its streams, or its last write
  // raced its exit): wait for it, within the deadline. A pidfd turns readable when the child
  // exits, so one poll waits for it and one waitpid reaps it, whenever it ends: the same
  // system calls in every run (the SIGKILL sweeps count them, test/integration/
  // fault_injection_test.cpp). Without pidfds (kernels before 5.3), naps between WNOHANG reaps.
  Child& child = *child_;
  std::optional<int> status;
  if (!expired && deadline_) {
    // The system call itself: glibc 2.36's <sys/pidfd.h> declares pidfd_open without C
    // linkage. A pidfd is always close-on-exec.
    const UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, child.pid(), 0)));
    if (pidfd) {
      for (;;) {
        pollfd p{pidfd.get(), POLLIN, 0};
        // A child that closed its output and goes on running gets its time off this CPU
        // ended too; not at once, which cost about 0.3 ms per vxlan ADD (see OffThisCpu).
        const int ready = poll(&p, 1, poll_timeout(next_wake()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw os_error("failed to wait for \"" + path_ + "\"");
        if (ready == 0 && Clock::now() < *deadline_) continue;  // time off over
        expired = ready == 0;
        break;
      }
    }
    if (pidfd && !expired) status = child.reap(true);
  }
  if (!expired && !deadline_) {
    if (off_this_cpu_) off_this_cpu_->release();  // no deadline to wake up for
    status = child.reap(true);
  }
  for (auto nap = std::chrono::microseconds(50); !expired && !status;
       nap = std::min(nap * 2, std::chrono::microseconds(10000))) {
    status = child.reap(false);
    if (status) break;
    if (Clock::now() >= *deadline_) {
      expired = true;
      break;
    }
    std::this_thread::sleep_for(nap);
  }
  if (expired) {
    child.kill();
    status = child.reap(true);
    result.timed_out_after = timeout_;
  }
  result.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
  return result;
}

// What ExecRunner::start's default hands back: a run already finished.
class Finished final : public StartedExec {
 public:
  explicit Finished(ExecResult r) : result_(std::move(r)) {}
  ExecResult finish() override { return std::move(result_); }

 private:
  ExecResult result_;
};

}  // namespace

std::unique_ptr<StartedExec> ExecRunner::start(const std::string& path, const EnvMap& env,
                                               std::string_view input) {
  return std::make_unique<Finished>(run(path, env, input));
}

ExecResult SpawnRunner::run(const std::string& path, const EnvMap& env, std::string_view input) {
  return spawn({path}, env, input, options_);
}

std::unique_ptr<StartedExec> SpawnRunner::start(const std::string& path, const EnvMap& env,
                                                std::string_view input) {
  return spawn_start({path}, env, input, options_);
}

std::unique_ptr<StartedExec> spawn_start(const std::vector<std::string>& args, const EnvMap& env,
                                         std::string_view input, const SpawnOptions& options) {
  return std::make_unique<Spawned>(args, env, input, options, true);
}

ExecResult spawn(const std::vector<std::string>& args, const EnvMap& env, std::string_view input,
                 const SpawnOptions& options) {
  return Spawned(args, env, input, options, false).finish();
}

std::chrono::milliseconds delegate_timeout(const EnvMap& env) {
  auto it = env.find(std::string(kDelegateTimeoutVar));
  if (it == env.end()) return kDefaultDelegateTimeout;
  const std::string& text = it->second;
  int seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || seconds < 1 ||
      seconds > 3600) {
    throw Error(kErrInvalidEnv, std::string(kDelegateTimeoutVar) + ": \"" + text +
                                    "\" is not a whole number of seconds from 1 to 3600");
  }
  return std::chrono::seconds(seconds);
}

std::string find_plugin(std::string_view type, const std::vector<std::string>& path) {
  std::string list;
  for (const auto& dir : path) list += (list.empty() ? "" : " ") + dir;
  if (type.empty() || type == "." || type == ".." || type.find('/') != std::string_view::npos ||
      type.find('\0') != std::string_view::npos) {
    throw Error(kErrInvalidConfig, "invalid plugin type \"" + std::string(type) + "\"");
  }
  for (const auto& dir : path) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + std::string(type);
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  throw Error(kErrInvalidConfig,
              "failed to find plugin \"" + std::string(type) + "\" in path [" + list + "]");
}

StartedPlugin start_plugin(ExecRunner& runner, std::string_view type,
                           const std::vector<std::string>& path, std::string_view command,
                           EnvMap env, std::string_view input) {
  std::string binary = find_plugin(type, path);
  env["CNI_COMMAND"] = std::string(command);
  return StartedPlugin(std::string(type), runner.start(binary, env, input));
}

std::string StartedPlugin::finish() {
  ExecResult r = exec_->finish();
  exec_.reset();
  if (r.timed_out_after) {
    const auto ms = r.timed_out_after->count();
    const std::string limit =
        ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
    throw Error(kErrInternal, "plugin \"" + type_ + "\" did not finish within " + limit +
                                  " and was killed (" + std::string(kDelegateTimeoutVar) +
                                  " sets the limit)");
  }
  if (r.exit_code == 0) return r.out;
  // The plugin's error JSON is on stdout (SPEC "Error"); fall back to stderr text.
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_object() && j.contains("code") && j["code"].is_number_integer()) {
    std::string msg = j.value("msg", std::string());
    std::string details = j.value("details", std::string());
    throw Error(j["code"].get<int>(), msg, details);
  }
  std::string text = r.err.empty() ? r.out : r.err;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  throw Error(kErrInternal, "plugin \"" + type_ + "\" failed (exit status " +
                                std::to_string(r.exit_code) + "): " + text);
}

std::string invoke_plugin(ExecRunner& runner, std::string_view type,
                          const std::vector<std::string>& path, std::string_view command,
                          EnvMap env, std::string_view input) {
  return start_plugin(runner, type, path, command, std::move(env), input).finish();
}

}  // namespace cni
