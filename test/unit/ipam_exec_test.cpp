#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/process/ipam_exec.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/skel.h"
#include "libcni/protocol/version.h"

namespace {

namespace fs = std::filesystem;

// Records every call and answers with a canned ExecResult.
class FakeRunner : public cni::ExecRunner {
 public:
  struct Call {
    std::string path;
    cni::EnvMap env;
    std::string input;
  };
  cni::ExecResult reply;
  std::vector<Call> calls;

  // ExecRunner::start's default runs the call at once: a call made by start() is in `calls`
  // when start() returns.
  cni::ExecResult run(const std::string& path, const cni::EnvMap& env,
                      std::string_view input) override {
    calls.push_back({path, env, std::string(input)});
    return reply;
  }
};

// A directory holding an executable file named `name`, so find_plugin finds it.
class PluginDir {
 public:
  explicit PluginDir(const std::string& name) {
    std::string tmpl = (fs::temp_directory_path() / "strait-ipam-exec-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/" + name) << "#!/bin/sh\nexit 1\n";
    fs::permissions(dir_ + "/" + name, fs::perms::owner_all);
  }
  ~PluginDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

struct Fixture {
  explicit Fixture(const std::string& config, const std::string& command = "ADD",
                   const std::string& ipam_name = "fake-ipam")
      : plugins(ipam_name), log(log_sink), stdin_data(config) {
    environ = {{"CNI_COMMAND", command},
               {"CNI_CONTAINERID", "ctr1"},
               {"CNI_NETNS", "/run/netns/x"},
               {"CNI_IFNAME", "eth0"},
               {"CNI_PATH", "/nonexistent:" + plugins.path()},
               {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p"},
               {"SOME_OTHER", "kept"}};
    env = cni::parse_env(environ);
    conf = cni::parse_netconf(stdin_data, cni::supported_versions());
  }
  cni::CmdArgs args() { return cni::CmdArgs{env, conf, stdin_data, environ, log, runner}; }

  PluginDir plugins;
  std::ostringstream log_sink;
  cni::Logger log;
  std::string stdin_data;
  cni::EnvMap environ;
  cni::Env env;
  cni::NetConf conf;
  FakeRunner runner;
};

const char* kConfig = R"({"cniVersion":"1.0.0","name":"net1","type":"macvlan","master":"eth9",)"
                      R"("ipam":{"type":"fake-ipam","ranges":[[{"subnet":"10.1.0.0/24"}]]}})";

}  // namespace

TEST_CASE("ipam_add runs ipam.type with the same env and stdin", "[ipam_exec]") {
  Fixture f(kConfig);
  f.runner.reply.out =
      R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.7/24","gateway":"10.1.0.1"}],)"
      R"("routes":[{"dst":"0.0.0.0/0"}]})";
  cni::Result r = cni::ipam_add(f.args());

  REQUIRE(f.runner.calls.size() == 1);
  const auto& call = f.runner.calls[0];
  CHECK(call.path == f.plugins.path() + "/fake-ipam");
  CHECK(call.input == kConfig);  // the original bytes, not a re-serialisation
  CHECK(call.env == f.environ);  // every variable forwarded, CNI_COMMAND=ADD included
  CHECK(call.env.at("SOME_OTHER") == "kept");

  CHECK(r.cni_version == "1.0.0");
  REQUIRE(r.ips.size() == 1);
  CHECK(r.ips[0].address.str() == "10.1.0.7/24");
  REQUIRE(r.ips[0].gateway);
  CHECK(r.ips[0].gateway->str() == "10.1.0.1");
  REQUIRE(r.routes.size() == 1);
  CHECK(r.routes[0].dst.str() == "0.0.0.0/0");
  CHECK(r.interfaces.empty());
}

TEST_CASE("ipam_add accepts an older result version", "[ipam_exec]") {
  Fixture f(kConfig);
  f.runner.reply.out = R"({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.9/24"}]})";
  cni::Result r = cni::ipam_add(f.args());
  CHECK(r.cni_version == "0.4.0");
  REQUIRE(r.ips.size() == 1);
  CHECK(r.ips[0].address.str() == "10.1.0.9/24");
}

TEST_CASE("ipam delegate errors pass through unchanged", "[ipam_exec]") {
  Fixture f(kConfig);
  f.runner.reply.exit_code = 1;
  f.runner.reply.out =
      R"({"cniVersion":"1.0.0","code":11,"msg":"range busy","details":"lock held by 42"})";
  try {
    cni::ipam_add(f.args());
    FAIL("ipam_add did not throw");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 11);
    CHECK(e.msg() == "range busy");
    CHECK(e.details() == "lock held by 42");
  }
  // Same for the verbs without a result.
  try {
    cni::ipam_del(f.args());
    FAIL("ipam_del did not throw");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 11);
    CHECK(e.msg() == "range busy");
  }
}

TEST_CASE("ipam_add rejects output that is not a result", "[ipam_exec]") {
  Fixture f(kConfig);
  SECTION("not JSON") {
    f.runner.reply.out = "hello";
    try {
      cni::ipam_add(f.args());
      FAIL("no throw");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrDecode);
      CHECK_THAT(e.msg(), Catch::Contains("fake-ipam"));
    }
  }
  SECTION("malformed address") {
    f.runner.reply.out = R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.300/24"}]})";
    try {
      cni::ipam_add(f.args());
      FAIL("no throw");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrDecode);
      CHECK_THAT(e.msg(), Catch::Contains("ipam result"));
    }
  }
}

TEST_CASE("ipam verbs forward the command", "[ipam_exec]") {
  struct Verb {
    const char* name;
    void (*fn)(const cni::CmdArgs&);
  };
  for (Verb v : {Verb{"DEL", cni::ipam_del}, Verb{"CHECK", cni::ipam_check},
                 Verb{"STATUS", cni::ipam_status}, Verb{"GC", cni::ipam_gc}}) {
    CAPTURE(v.name);
    Fixture f(kConfig, v.name);
    v.fn(f.args());
    REQUIRE(f.runner.calls.size() == 1);
    CHECK(f.runner.calls[0].env.at("CNI_COMMAND") == v.name);
    CHECK(f.runner.calls[0].input == kConfig);
  }
}

TEST_CASE("ipam_add with a different CNI_COMMAND in env still sends ADD", "[ipam_exec]") {
  // A plugin delegating ADD while handling some other verb (e.g. a rollback) must send ADD.
  Fixture f(kConfig, "CHECK");
  f.runner.reply.out = R"({"cniVersion":"1.0.0","ips":[]})";
  cni::ipam_add(f.args());
  REQUIRE(f.runner.calls.size() == 1);
  CHECK(f.runner.calls[0].env.at("CNI_COMMAND") == "ADD");
}

TEST_CASE("missing or empty ipam.type is an invalid config", "[ipam_exec]") {
  for (const char* conf :
       {R"({"cniVersion":"1.0.0","name":"n","type":"macvlan"})",
        R"({"cniVersion":"1.0.0","name":"n","type":"macvlan","ipam":{}})",
        R"({"cniVersion":"1.0.0","name":"n","type":"macvlan","ipam":{"type":""}})"}) {
    CAPTURE(conf);
    Fixture f(conf);
    try {
      cni::ipam_add(f.args());
      FAIL("no throw");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrInvalidConfig);
      CHECK_THAT(e.msg(), Catch::Contains("\"ipam.type\""));
    }
    CHECK(f.runner.calls.empty());
  }
}

TEST_CASE("an ipam.type not on CNI_PATH is reported with the path", "[ipam_exec]") {
  Fixture f(R"({"cniVersion":"1.0.0","name":"n","type":"macvlan","ipam":{"type":"nope"}})");
  try {
    cni::ipam_del(f.args());
    FAIL("no throw");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInvalidConfig);
    CHECK_THAT(e.msg(), Catch::Contains("\"nope\"") && Catch::Contains(f.plugins.path()));
  }
  CHECK(f.runner.calls.empty());
}

TEST_CASE("EarlyIpamAdd starts a store-only IPAM at start(), others in result()", "[ipam_exec]") {
  const char* reply = R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.7/24"}]})";
  auto config = [](const std::string& type) {
    return R"({"cniVersion":"1.0.0","name":"net1","type":"macvlan","ipam":{"type":")" + type +
           R"("}})";
  };
  CHECK(cni::ipam_independent_of_link("host-local"));
  CHECK(cni::ipam_independent_of_link("global-ipam"));
  CHECK_FALSE(cni::ipam_independent_of_link("dhcp"));
  CHECK_FALSE(cni::ipam_independent_of_link("fake-ipam"));

  SECTION("host-local starts at start(), and result() collects it") {
    Fixture f(config("host-local"), "ADD", "host-local");
    f.runner.reply.out = reply;
    cni::Result r;
    {
      cni::CmdArgs args = f.args();
      cni::EarlyIpamAdd early(args);
      early.wait();  // nothing started yet: returns at once
      CHECK(f.runner.calls.empty());
      early.start();
      REQUIRE(f.runner.calls.size() == 1);
      early.start();  // once started, again is nothing
      early.wait();   // keeps the outcome for result()
      r = early.result();
    }
    REQUIRE(f.runner.calls.size() == 1);
    CHECK(f.runner.calls[0].env.at("CNI_COMMAND") == "ADD");
    REQUIRE(r.ips.size() == 1);
    CHECK(r.ips[0].address.str() == "10.1.0.7/24");
  }
  SECTION("dhcp runs in result(), after the link exists") {
    Fixture f(config("dhcp"), "ADD", "dhcp");
    f.runner.reply.out = reply;
    cni::CmdArgs args = f.args();
    cni::EarlyIpamAdd early(args);
    early.start();
    CHECK(f.runner.calls.empty());
    cni::Result r = early.result();
    REQUIRE(f.runner.calls.size() == 1);
    CHECK(r.ips.size() == 1);
  }
  SECTION("a failed early ADD is rethrown by result(), and wait() returns") {
    Fixture f(config("host-local"), "ADD", "host-local");
    f.runner.reply.exit_code = 1;
    f.runner.reply.out = R"({"cniVersion":"1.0.0","code":100,"msg":"no addresses left"})";
    cni::CmdArgs args = f.args();
    cni::EarlyIpamAdd early(args);
    early.start();
    early.wait();
    REQUIRE(f.runner.calls.size() == 1);
    try {
      early.result();
      FAIL("no exception");
    } catch (const cni::Error& e) {
      CHECK(e.code() == 100);
      CHECK(e.msg() == "no addresses left");
    }
  }
}
