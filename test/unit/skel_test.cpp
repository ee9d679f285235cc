#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <tuple>

#include <catch2/catch.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/build_version.h"
#include "libcni/protocol/skel.h"

using nlohmann::json;

namespace {

// An ExecRunner that must not be called: skel itself never execs anything.
class NoExec : public cni::ExecRunner {
 public:
  cni::ExecResult run(const std::string& path, const cni::EnvMap&, std::string_view) override {
    FAIL("unexpected exec of " << path);
    return {};
  }
};

struct Outcome {
  int rc;
  std::string out;
  std::string err;
  json error() const { return json::parse(out); }
};

struct Calls {
  std::vector<std::string> verbs;
  std::optional<std::vector<cni::Attachment>> gc_valid;
  bool gc_called = false;
};

cni::Plugin test_plugin(Calls& calls) {
  cni::Plugin p;
  p.name = "testplug";
  p.about = "strait testplug";
  p.cni_args = {"IP"};
  p.add = [&](const cni::CmdArgs& a) {
    calls.verbs.push_back("ADD " + a.env.ifname);
    cni::Result r;
    r.interfaces.push_back({a.env.ifname, "aa:bb:cc:dd:ee:ff", 1500, a.env.netns, "", ""});
    r.ips.push_back({cni::IpNet::parse("10.1.0.5/24"), cni::IpAddress::parse("10.1.0.1"), 0});
    if (a.conf.raw.value("fail", false)) throw cni::Error(107, "boom", "more");
    if (a.conf.raw.value("crash", false)) throw std::runtime_error("unexpected");
    return r;
  };
  p.del = [&](const cni::CmdArgs&) { calls.verbs.push_back("DEL"); };
  p.check = [&](const cni::CmdArgs&) { calls.verbs.push_back("CHECK"); };
  p.status = [&](const cni::CmdArgs&) { calls.verbs.push_back("STATUS"); };
  p.parse = [&](const cni::CmdArgs& a) {
    calls.verbs.push_back("PARSE");
    if (a.conf.raw.value("fail", false)) throw cni::Error(cni::kErrInvalidConfig, "bad key");
  };
  p.gc = [&](const cni::CmdArgs&, const std::optional<std::vector<cni::Attachment>>& v) {
    calls.gc_called = true;
    calls.gc_valid = v;
  };
  return p;
}

Outcome run(const cni::Plugin& p, const cni::EnvMap& env, const std::string& input) {
  std::ostringstream out, err;
  NoExec exec;
  int rc = cni::skel_run(p, cni::Io{env, input, out, err, exec});
  return {rc, out.str(), err.str()};
}

cni::EnvMap env_for(const std::string& cmd) {
  return {{"CNI_COMMAND", cmd},
          {"CNI_CONTAINERID", "c1"},
          {"CNI_NETNS", "/run/netns/p"},
          {"CNI_IFNAME", "net1"},
          {"CNI_PATH", "/nonexistent"}};
}

std::string conf(const std::string& version, const std::string& extra = "") {
  return R"({"cniVersion":")" + version + R"(","name":"n","type":"testplug")" + extra + "}";
}

}  // namespace

TEST_CASE("VERSION answers for any stdin", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  for (const char* input : {"", "{\"cniVersion\":\"x\"}", "garbage"}) {
    auto o = run(p, {{"CNI_COMMAND", "VERSION"}, {"CNI_NETNS", "dummy"}}, input);
    CHECK(o.rc == 0);
    auto j = json::parse(o.out);
    CHECK(j["cniVersion"] == "1.1.0");
    CHECK(j["supportedVersions"] == json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
  }
  CHECK(calls.verbs.empty());
}

TEST_CASE("an empty CNI_COMMAND prints the about line on stderr", "[skel]") {
  Calls calls;
  auto o = run(test_plugin(calls), {}, "");
  CHECK(o.rc == 0);
  CHECK(o.out.empty());
  CHECK_THAT(o.err, Catch::Contains("strait testplug"));
}

TEST_CASE("ADD prints the result in the config's version", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  auto old = run(p, env_for("ADD"), conf("0.3.1"));
  REQUIRE(old.rc == 0);
  auto j = json::parse(old.out);
  CHECK(j["cniVersion"] == "0.3.1");
  CHECK(j["ips"][0]["version"] == "4");
  CHECK_FALSE(j["interfaces"][0].contains("mtu"));
  auto now = run(p, env_for("ADD"), conf("1.1.0"));
  REQUIRE(now.rc == 0);
  j = json::parse(now.out);
  CHECK(j["cniVersion"] == "1.1.0");
  CHECK_FALSE(j["ips"][0].contains("version"));
  CHECK(j["interfaces"][0]["mtu"] == 1500);
  CHECK(calls.verbs == std::vector<std::string>{"ADD net1", "ADD net1"});
}

TEST_CASE("errors become the error JSON on stdout with exit 1", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  auto o = run(p, env_for("ADD"), conf("1.0.0", R"(,"fail":true)"));
  CHECK(o.rc == 1);
  auto e = o.error();
  CHECK(e == json{{"cniVersion", "1.0.0"}, {"code", 107}, {"msg", "boom"}, {"details", "more"}});
  CHECK_THAT(o.err, Catch::Contains("boom"));  // also logged on stderr

  auto crash = run(p, env_for("ADD"), conf("1.0.0", R"(,"crash":true)"));
  CHECK(crash.rc == 1);
  CHECK(crash.error()["code"] == cni::kErrInternal);
  CHECK(crash.error()["msg"] == "unexpected");

  auto bad_json = run(p, env_for("ADD"), "{nope");
  CHECK(bad_json.rc == 1);
  CHECK(bad_json.error()["code"] == cni::kErrDecode);
  CHECK(bad_json.error()["cniVersion"] == "1.1.0");

  auto env = env_for("ADD");
  env.erase("CNI_NETNS");
  auto no_netns = run(p, env, conf("1.0.0"));
  CHECK(no_netns.rc == 1);
  CHECK(no_netns.error()["code"] == cni::kErrInvalidEnv);
  CHECK_THAT(no_netns.error()["msg"].get<std::string>(), Catch::Contains("CNI_NETNS"));
}

TEST_CASE("CHECK needs 0.4.0, STATUS and GC need 1.1.0", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  auto check_old = run(p, env_for("CHECK"), conf("0.3.1"));
  CHECK(check_old.rc == 1);
  CHECK(check_old.error()["code"] == cni::kErrIncompatibleVersion);
  CHECK(run(p, env_for("CHECK"), conf("0.4.0")).rc == 0);
  for (const char* cmd : {"STATUS", "GC"}) {
    auto o = run(p, env_for(cmd), conf("1.0.0"));
    CHECK(o.rc == 1);
    CHECK(o.error()["code"] == 1);
    CHECK(run(p, env_for(cmd), conf("1.1.0")).rc == 0);
  }
  CHECK(calls.verbs == std::vector<std::string>{"CHECK", "STATUS"});
  CHECK(calls.gc_called);
}

TEST_CASE("PARSE runs the plugin's config check in any version, prints nothing", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  const cni::EnvMap env = {{"CNI_COMMAND", "PARSE"}, {"CNI_PATH", "/nonexistent"}};
  auto ok = run(p, env, conf("0.4.0"));
  CHECK(ok.rc == 0);
  CHECK(ok.out.empty());
  auto bad = run(p, env, conf("1.0.0", R"(,"fail":true)"));
  CHECK(bad.rc == 1);
  CHECK(bad.error()["code"] == cni::kErrInvalidConfig);
  CHECK(calls.verbs == std::vector<std::string>{"PARSE", "PARSE"});
  // A plugin without a check says so (never a silent success).
  p.parse = nullptr;
  auto none = run(p, env, conf("1.0.0"));
  CHECK(none.rc == 1);
  CHECK_THAT(none.error()["msg"].get<std::string>(), Catch::Contains("does not implement PARSE"));
}

TEST_CASE("GC gets absent vs empty attachments", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  REQUIRE(run(p, env_for("GC"), conf("1.1.0")).rc == 0);
  CHECK_FALSE(calls.gc_valid.has_value());
  REQUIRE(run(p, env_for("GC"), conf("1.1.0", R"(,"cni.dev/valid-attachments":[])")).rc == 0);
  REQUIRE(calls.gc_valid.has_value());
  CHECK(calls.gc_valid->empty());
}

TEST_CASE("DEL works without CNI_NETNS; unknown CNI_ARGS are refused", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  auto env = env_for("DEL");
  env.erase("CNI_NETNS");
  CHECK(run(p, env, conf("1.0.0")).rc == 0);
  env["CNI_ARGS"] = "FOO=1";
  auto o = run(p, env, conf("1.0.0"));
  CHECK(o.rc == 1);
  CHECK(o.error()["code"] == cni::kErrInvalidEnv);
  env["CNI_ARGS"] = "IgnoreUnknown=1;FOO=1;IP=10.1.0.9";
  CHECK(run(p, env, conf("1.0.0")).rc == 0);
  CHECK(calls.verbs == std::vector<std::string>{"DEL", "DEL"});
}

TEST_CASE("logFile in the config receives the log instead of stderr", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  char tmpl[] = "/tmp/strait-skel-log-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  auto o = run(p, env_for("ADD"),
               conf("1.0.0", std::string(R"(,"fail":true,"logFile":")") + tmpl + "\""));
  CHECK(o.rc == 1);
  CHECK(o.err.empty());
  std::ifstream in(tmpl);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("testplug ADD network=n container=c1 ifname=net1: failed "
                                   "(code 107): boom"));
  unlink(tmpl);
}

namespace {

// Runs `cmd` with logFile (a fresh file) and `extra` keys; the lines it logged.
struct Logged {
  Outcome outcome;
  std::vector<std::string> lines;
};
Logged run_logged(const cni::Plugin& p, const std::string& cmd, const std::string& extra) {
  char tmpl[] = "/tmp/strait-skel-log-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  Logged l{
      run(p, env_for(cmd), conf("1.1.0", std::string(R"(,"logFile":")") + tmpl + "\"" + extra)),
      {}};
  std::ifstream in(tmpl);
  for (std::string line; std::getline(in, line);) l.lines.push_back(line);
  unlink(tmpl);
  return l;
}

}  // namespace

TEST_CASE("logLevel: one line per event naming command, container and ifname", "[skel][log]") {
  Calls calls;
  auto p = test_plugin(calls);
  SECTION("info: one line for a successful ADD, with what it gave; never the config") {
    auto l = run_logged(p, "ADD", R"(,"logLevel":"info","secret":"s3cr3t")");
    REQUIRE(l.outcome.rc == 0);
    REQUIRE(l.lines.size() == 1);
    CHECK_THAT(l.lines[0], Catch::Contains(" info testplug ADD network=n container=c1 "
                                           "ifname=net1: ADD ok: 10.1.0.5/24"));
    CHECK(l.outcome.err.empty());
    CHECK(json::parse(l.outcome.out)["ips"][0]["address"] == "10.1.0.5/24");  // stdout: result
    auto del = run_logged(p, "DEL", R"(,"logLevel":"info","secret":"s3cr3t")");
    REQUIRE(del.lines.size() == 1);
    CHECK_THAT(del.lines[0], Catch::Contains("testplug DEL network=n container=c1 ifname=net1: "
                                             "DEL ok"));
    for (const auto& line : l.lines) CHECK(line.find("s3cr3t") == std::string::npos);
  }
  SECTION("warning (the default): a success logs nothing, a failure one error line") {
    CHECK(run_logged(p, "ADD", "").lines.empty());
    auto l = run_logged(p, "ADD", R"(,"fail":true)");
    REQUIRE(l.lines.size() == 1);
    CHECK_THAT(l.lines[0], Catch::Contains(" error testplug ADD network=n container=c1 "
                                           "ifname=net1: failed (code 107): boom"));
  }
  SECTION("debug: the config too") {
    auto l = run_logged(p, "ADD", R"(,"logLevel":"debug","secret":"s3cr3t")");
    REQUIRE(l.lines.size() == 2);
    CHECK_THAT(l.lines[0], Catch::Contains(" debug testplug ADD ") && Catch::Contains("s3cr3t"));
  }
  SECTION("error: only failures") {
    CHECK(run_logged(p, "ADD", R"(,"logLevel":"error")").lines.empty());
  }
  SECTION("an unknown logLevel is invalid config naming it, and nothing runs") {
    auto l = run_logged(p, "ADD", R"(,"logLevel":"verbose")");
    CHECK(l.outcome.rc == 1);
    CHECK(l.outcome.error()["code"] == cni::kErrInvalidConfig);
    CHECK_THAT(l.outcome.error()["msg"].get<std::string>(),
               Catch::Contains("logLevel") && Catch::Contains("\"verbose\""));
    CHECK(calls.verbs.empty());
  }
}

TEST_CASE("by hand: --version, --help, subcommands, no CNI_COMMAND", "[skel]") {
  Calls calls;
  auto p = test_plugin(calls);
  std::vector<std::string> seen;
  cni::Cli cli = [&](const std::vector<std::string>& args, const cni::EnvMap&, std::ostream& out,
                     std::ostream&) {
    seen = args;
    out << "SUBCOMMANDS: sync\n";
    return args.front() == "--help" ? 0 : 3;
  };
  auto by_hand = [&](std::vector<std::string> args, const cni::EnvMap& env, const cni::Cli& c) {
    std::ostringstream out, err;
    auto rc = cni::run_by_hand(p, args, env, c, out, err);
    return std::make_tuple(rc, out.str(), err.str());
  };
  auto [rc, out, err] = by_hand({"--version"}, {}, {});
  CHECK(rc == 0);
  CHECK(out == "testplug " + std::string(cni::build_version()) + "\n");
  CHECK(std::get<1>(by_hand({"-V"}, {}, cli)) == out);
  CHECK_FALSE(cni::build_version().empty());

  std::tie(rc, out, err) = by_hand({"--help"}, {}, {});
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::StartsWith("strait testplug\n") &&
                      Catch::Contains("plugins/testplug/README.md") &&
                      Catch::Contains("CNI_COMMAND"));
  std::tie(rc, out, err) = by_hand({"-h"}, {}, cli);
  CHECK(rc == 0);
  CHECK_THAT(
      out, Catch::Contains("plugins/testplug/README.md") && Catch::EndsWith("SUBCOMMANDS: sync\n"));
  CHECK(seen == std::vector<std::string>{"--help"});

  std::tie(rc, out, err) = by_hand({"sync", "--config", "x"}, {}, cli);
  CHECK(rc == 3);
  CHECK(seen == std::vector<std::string>{"sync", "--config", "x"});
  std::tie(rc, out, err) = by_hand({"sync"}, {}, {});
  CHECK(rc == 2);
  CHECK_THAT(err, Catch::Contains("unknown argument \"sync\""));

  // No arguments: the help on stderr (stdout is the runtime's) unless CNI_COMMAND is set.
  std::tie(rc, out, err) = by_hand({}, {{"CNI_COMMAND", ""}}, cli);
  CHECK(rc == 0);
  CHECK(out.empty());
  CHECK_THAT(err, Catch::Contains("strait testplug") && Catch::Contains("testplug --help"));
  CHECK_FALSE(std::get<0>(by_hand({}, {{"CNI_COMMAND", "ADD"}}, cli)).has_value());
}

TEST_CASE("read_stdin: all of it, a read error is I/O (5), too much is decode (6)", "[skel]") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  REQUIRE(write(fds[1], "{\"a\":1}", 7) == 7);
  close(fds[1]);
  CHECK(cni::read_stdin(fds[0]) == "{\"a\":1}");
  close(fds[0]);
  // The error reading `path` gives.
  auto error_reading = [](const char* path, int flags) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    REQUIRE(fd >= 0);
    try {
      cni::read_stdin(fd);
    } catch (const cni::Error& e) {
      close(fd);
      return std::make_pair(e.code(), e.msg());
    }
    close(fd);
    return std::make_pair(0, std::string("no error"));
  };
  // A directory opens for reading, and read(2) fails on it with EISDIR.
  CHECK(error_reading("/", O_DIRECTORY) ==
        std::make_pair(cni::kErrIo, std::string("failed to read stdin: Is a directory")));
  CHECK(error_reading("/dev/zero", 0) ==
        std::make_pair(cni::kErrDecode,
                       std::string("failed to decode config: stdin is larger than 4 MiB")));
}
