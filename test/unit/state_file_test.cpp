#include "libcni/core/state_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "libcni/core/error.h"
#include "libcni/process/file_lock.h"
#include "test/support/temp_dir.h"

using strait::unit::TmpDir;

namespace {

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("state files: written whole into new directories, read back, removed", "[state_file]") {
  TmpDir dir;
  const std::string path = dir.path() + "/a/b/record";
  CHECK(cni::read_state_file(path) == std::nullopt);
  cni::write_state_file(path, "first");
  CHECK(cni::read_state_file(path) == "first");
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(dir.path() + "/a") == 0700);
  CHECK(mode_of(dir.path() + "/a/b") == 0700);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  // A killed writer's temporary file is overwritten by the next write and goes with the file.
  { std::ofstream(path + ".tmp") << "half writ"; }
  CHECK(cni::read_state_file(path) == "first");
  cni::write_state_file(path, "second, longer than the first");
  CHECK(cni::read_state_file(path) == "second, longer than the first");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  { std::ofstream(path + ".tmp") << "x"; }
  CHECK(cni::remove_state_file(path));
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK_FALSE(cni::remove_state_file(path));
}

TEST_CASE("state files: failures name the path", "[state_file]") {
  TmpDir dir;
  const std::string file = dir.path() + "/file";
  cni::write_state_file(file, "x");
  // A file where a directory should be.
  CHECK_THROWS_WITH(cni::write_state_file(file + "/inside", "y"),
                    Catch::Contains("\"" + file + "/inside.tmp\": Not a directory"));
  CHECK_THROWS_WITH(cni::read_state_file(dir.path()), Catch::Contains(dir.path()));
}

TEST_CASE("FileLock: exclusive, released with the object, times out with code 11", "[state_file]") {
  TmpDir dir;
  const std::string path = dir.path() + "/locks/vf.lock";
  {
    cni::FileLock held = cni::FileLock::acquire(path, std::chrono::milliseconds(100));
    CHECK(held.held());
    CHECK(mode_of(path) == 0600);
    // flock is per open file: a second open in this process is another holder.
    try {
      cni::FileLock::acquire(path, std::chrono::milliseconds(30));
      FAIL("a held lock was taken again");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrTryAgainLater);
      CHECK_THAT(e.msg(), Catch::Contains("\"" + path + "\" is still locked after 30 ms"));
    }
  }
  CHECK(cni::FileLock::acquire(path, std::chrono::milliseconds(30)).held());
}
