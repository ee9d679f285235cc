#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
// GCC 12 with -O2 -fsanitize=address reports a false -Wmaybe-uninitialized inside <regex>.
// clang has no such warning and, under -Werror, rejects the pragma that names it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <string>
#include <vector>

// Least privilege: the product (libcni/, ipam/, plugins/) never runs a shell or a command
// line tool; it talks netlink, sysfs and procfs. The one allowed exec is IPAM delegation and
// cnitool running plugins, both through libcni/process/invoke.cpp (posix_spawn of a plugin binary).
namespace {

namespace fs = std::filesystem;

fs::path source_root() { return fs::path(STRAIT_FIXTURES_DIR).parent_path().parent_path(); }

struct Rule {
  const char* what;
  std::regex re;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = {
      {"system()", std::regex(R"((^|[^\w.>])(std::)?system\s*\()")},
      {"popen()", std::regex(R"(\bpopen\s*\()")},
      {"exec*()", std::regex(R"(\b(execl|execlp|execle|execv|execvp|execvpe|fexecve)\s*\()")},
      {"posix_spawn outside libcni/process/invoke.cpp", std::regex(R"(\bposix_spawnp?\s*\()")},
      {"an ip/tc command line",
       std::regex(
           R"re("(ip|tc)\s+(-\w+|link|addr|address|route|rule|neigh|netns|qdisc|class|filter)\b)re")},
      {"a shell or tool path",
       std::regex(R"re("(/usr)?/s?bin/(ip|tc|sh|bash|ethtool|iptables)")re")},
      // {"ip", "link", ...} or {"sh", "-c", ...}; not a JSON pair such as {"ip", ip}.
      {"a tool name as argv[0]",
       std::regex(
           R"re(\{\s*"(ip|tc|sh|bash|ethtool|iptables|nsenter)"\s*,\s*"(-\w*|link|addr|address|route|rule|neigh|netns|qdisc|class|filter)")re")},
  };
  return r;
}

// "<file>:<line>: <rule>: <text>" for every hit in the product sources under `root`.
std::vector<std::string> scan(const fs::path& root) {
  std::vector<std::string> hits;
  for (const char* dir : {"libcni", "ipam", "plugins", "cnitool"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".cpp" && ext != ".h" && ext != ".cc" && ext != ".hpp") continue;
      const std::string rel = fs::relative(e.path(), root).string();
      std::ifstream in(e.path());
      int n = 0;
      for (std::string line; std::getline(in, line);) {
        ++n;
        const auto code_end = line.find("//");
        const std::string code = line.substr(0, code_end);
        for (const Rule& r : rules()) {
          if (!std::regex_search(code, r.re)) continue;
          if (std::string(r.what).rfind("posix_spawn", 0) == 0 &&
              rel == "libcni/process/invoke.cpp") {
            continue;
          }
          hits.push_back(rel + ":" + std::to_string(n) + ": " + r.what + ": " + line);
        }
      }
    }
  }
  return hits;
}

}  // namespace

TEST_CASE("hygiene: the rules catch what they are meant to catch", "[hygiene]") {
  auto hit = [](const std::string& line) {
    for (const Rule& r : rules()) {
      if (std::regex_search(line, r.re)) return true;
    }
    return false;
  };
  CHECK(hit(R"(  system("ip link del x");)"));
  CHECK(hit(R"(  std::system(cmd.c_str());)"));
  CHECK(hit(R"(  FILE* f = popen("tc qdisc show", "r");)"));
  CHECK(hit(R"(  execvp(argv[0], argv);)"));
  CHECK(hit(R"(  std::string cmd = "ip -n " + ns + " link set up";)"));
  CHECK(hit(R"(  std::string cmd = "tc qdisc add dev ";)"));
  CHECK(hit(R"(  run("/sbin/ip", args);)"));
  CHECK(hit(R"(  spawn({"ip", "link", "show"}, env, "");)"));
  CHECK(hit(R"(  posix_spawnp(&pid, "ip", nullptr, nullptr, argv, envp);)"));
  // Not shell-outs.
  CHECK_FALSE(hit(R"(  throw std::system_error(errno, std::system_category(), what);)"));
  CHECK_FALSE(hit(R"(  for (const auto& ip : ips) s += "ip " + ip.str() + "\n";)"));
  CHECK(hit(R"(  spawn({"sh", "-c", cmd}, env, "");)"));
  CHECK_FALSE(hit(R"(  j.push_back({{"ip", a.ip.str()}, {"block", a.block.str()}});)"));
  CHECK_FALSE(hit(R"(  e.args = parse_cni_args(var("CNI_ARGS").value_or(""));)"));
}

TEST_CASE("hygiene: no shell-outs in libcni/, ipam/, plugins/, cnitool/", "[hygiene]") {
  REQUIRE(fs::exists(source_root() / "libcni" / "process" / "invoke.cpp"));
  const std::vector<std::string> hits = scan(source_root());
  for (const auto& h : hits) FAIL_CHECK(h);
  CHECK(hits.empty());
}
