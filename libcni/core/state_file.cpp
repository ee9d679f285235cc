#include "libcni/core/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "libcni/core/fd.h"
#include "libcni/core/read_file.h"

namespace cni {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw std::system_error(err, std::system_category(), "failed to " + what + " \"" + path + "\"");
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_dir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || fsync(fd.get()) != 0) fail("sync directory", dir, errno);
}

}  // namespace

void make_dirs(const std::string& dir, unsigned mode) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), mode) != 0 && errno != EEXIST) fail("create directory", part, errno);
  }
}

void write_state_file(const std::string& path, std::string_view content) {
  const std::string dir = parent_of(path);
  make_dirs(dir);
  const std::string tmp = path + ".tmp";
  {
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) fail("write", tmp, errno);
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = write(fd.get(), content.data() + done, content.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write", tmp, errno);
      }
      done += static_cast<size_t>(n);
    }
    if (fsync(fd.get()) != 0) fail("sync", tmp, errno);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) fail("rename into", path, errno);
  fsync_dir(dir);
}

std::optional<std::string> read_state_file(const std::string& path) {
  auto content = read_whole_file(path, O_NOFOLLOW);
  if (!content && errno != ENOENT) fail("read", path, errno);
  return content;
}

bool remove_state_file(const std::string& path) {
  if (unlink((path + ".tmp").c_str()) != 0 && errno != ENOENT) fail("remove", path + ".tmp", errno);
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    fail("remove", path, errno);
  }
  fsync_dir(parent_of(path));
  return true;
}

}  // namespace cni
