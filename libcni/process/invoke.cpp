#include "libcni/process/invoke.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/core/fd.h"

namespace cni {

namespace {

std::system_error os_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
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
  FileActions() { posix_spawn_file_actions_init(&fa_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

}  // namespace

ExecResult SpawnRunner::run(const std::string& path, const EnvMap& env, std::string_view input) {
  return spawn({path}, env, input);
}

ExecResult spawn(const std::vector<std::string>& args, const EnvMap& env, std::string_view input) {
  const std::string& path = args.at(0);
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  FileActions fa;
  posix_spawn_file_actions_adddup2(fa.get(), in_r.get(), 0);
  posix_spawn_file_actions_adddup2(fa.get(), out_w.get(), 1);
  posix_spawn_file_actions_adddup2(fa.get(), err_w.get(), 2);

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

  pid_t pid = 0;
  int rc = posix_spawn(&pid, path.c_str(), fa.get(), nullptr, argv.data(), envp.data());
  if (rc != 0) {
    errno = rc;
    throw os_error("failed to execute \"" + path + "\"");
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();

  // Feed stdin and drain both outputs together so that neither side blocks on a full pipe.
  ExecResult result;
  size_t written = 0;
  if (input.empty()) in_w.reset();
  fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  std::array<char, 65536> buf;
  // A plugin that exits without reading stdin must not kill us with SIGPIPE.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  while (out_r || err_r) {
    std::array<pollfd, 3> pfds{};
    nfds_t n = 0;
    pfds[n++] = {out_r ? out_r.get() : -1, POLLIN, 0};
    pfds[n++] = {err_r ? err_r.get() : -1, POLLIN, 0};
    pfds[n++] = {in_w ? in_w.get() : -1, POLLOUT, 0};
    if (poll(pfds.data(), n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      UniqueFd& fd = i == 0 ? out_r : err_r;
      if (!fd || !(pfds[static_cast<size_t>(i)].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = read(fd.get(), buf.data(), buf.size());
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf.data(), static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fd.reset();
      }
    }
    if (in_w && (pfds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t put = write(in_w.get(), input.data() + written, input.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      if (put < 0 && errno != EAGAIN && errno != EINTR) in_w.reset();
      if (written == input.size()) in_w.reset();
    }
  }
  in_w.reset();
  // Discard a SIGPIPE raised while writing, then restore the mask.
  timespec zero{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw os_error("failed to wait for \"" + path + "\"");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
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

std::string invoke_plugin(ExecRunner& runner, std::string_view type,
                          const std::vector<std::string>& path, std::string_view command,
                          EnvMap env, std::string_view input) {
  std::string binary = find_plugin(type, path);
  env["CNI_COMMAND"] = std::string(command);
  ExecResult r = runner.run(binary, env, input);
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
  throw Error(kErrInternal, "plugin \"" + std::string(type) + "\" failed (exit status " +
                                std::to_string(r.exit_code) + "): " + text);
}

}  // namespace cni
