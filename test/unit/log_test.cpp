#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "libcni/core/log.h"
#include "libcni/process/invoke.h"
#include "test/support/temp_dir.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A log file in a temporary directory, and the stream a Logger falls back on.
struct LogFile {
  strait::unit::TmpDir dir;
  std::string path = dir.path() + "/plugin.log";
  std::ostringstream stderr_text;
};

}  // namespace

TEST_CASE("logFile: appended, private, tagged", "[log]") {
  LogFile f;
  const std::string& path = f.path;
  std::ostringstream& stderr_text = f.stderr_text;
  {
    cni::Logger log(stderr_text);
    log.open_file(path);
    log.set_tag("macvlan[ADD c1]");
    log.error("first");
  }
  {
    cni::Logger log(stderr_text);
    log.open_file(path);
    log.warning("second");
    log.info("below the level");
  }
  const std::string text = slurp(path);
  CHECK_THAT(text, Catch::Contains("Z error macvlan[ADD c1]: first\n"));
  CHECK_THAT(text, Catch::EndsWith("Z warning second\n"));
  CHECK(text.find("first") < text.find("second"));
  CHECK(text.find("below the level") == std::string::npos);
  CHECK(stderr_text.str().empty());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // An unopenable file keeps the current sink and says so there.
  cni::Logger log(stderr_text);
  log.open_file(f.dir.path() + "/no/such/dir/x.log");
  log.error("still here");
  CHECK_THAT(stderr_text.str(), Catch::Contains("failed to open logFile") &&
                                    Catch::Contains("No such file or directory") &&
                                    Catch::Contains("still here"));
}

// A plugin that logs to a file execs its IPAM delegate (and cnitool its plugins) with
// cni::spawn: the child must not inherit the log's descriptor.
TEST_CASE("logFile: a spawned child does not inherit its descriptor", "[log][spawn]") {
  LogFile f;
  cni::Logger log(f.stderr_text);
  log.open_file(f.path);
  log.error("opened");
  REQUIRE_THAT(slurp(f.path), Catch::Contains("opened"));
  // The shell lists its own descriptors with their targets.
  cni::ExecResult r = cni::spawn({"/bin/sh", "-c", "ls -l /proc/$$/fd"}, {}, "");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("pipe:"));  // it does see its stdin/stdout/stderr
  CHECK_THAT(r.out, !Catch::Contains(f.path));
}
