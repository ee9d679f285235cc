#include <catch2/catch.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/env.h"

namespace {

cni::EnvMap base(const std::string& cmd) {
  return {{"CNI_COMMAND", cmd},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/run/netns/x"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin:/usr/lib/cni"}};
}

// Runs parse_env and returns the error it throws; fails the test when it does not.
cni::Error env_error(const cni::EnvMap& env) {
  try {
    cni::parse_env(env);
  } catch (const cni::Error& e) {
    return e;
  }
  FAIL("parse_env accepted the environment");
  return cni::Error(0, "");
}

}  // namespace

TEST_CASE("ADD env is parsed and CNI_PATH split", "[env]") {
  auto env = base("ADD");
  env["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=web-0;IP=10.1.0.9";
  cni::Env e = cni::parse_env(env);
  CHECK(e.command == "ADD");
  CHECK(e.container_id == "abc123");
  CHECK(e.netns == "/run/netns/x");
  CHECK(e.ifname == "eth0");
  CHECK(e.path == std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"});
  CHECK(e.args.ignore_unknown);
  CHECK(e.args.get("K8S_POD_NAME") == "web-0");
  CHECK(e.args.get("IP") == "10.1.0.9");
  CHECK_FALSE(e.args.get("MAC").has_value());
}

TEST_CASE("each missing variable is code 4 naming it", "[env]") {
  struct Case {
    std::string cmd, var;
  };
  for (const auto& c :
       {Case{"ADD", "CNI_CONTAINERID"}, Case{"ADD", "CNI_NETNS"}, Case{"ADD", "CNI_IFNAME"},
        Case{"ADD", "CNI_PATH"}, Case{"CHECK", "CNI_NETNS"}, Case{"DEL", "CNI_IFNAME"},
        Case{"DEL", "CNI_CONTAINERID"}, Case{"GC", "CNI_PATH"}, Case{"STATUS", "CNI_PATH"}}) {
    auto env = base(c.cmd);
    env.erase(c.var);
    auto e = env_error(env);
    CHECK(e.code() == cni::kErrInvalidEnv);
    CHECK_THAT(e.msg(), Catch::StartsWith(c.var));
  }
}

TEST_CASE("DEL without CNI_NETNS and GC/STATUS with only COMMAND and PATH are fine", "[env]") {
  auto del = base("DEL");
  del.erase("CNI_NETNS");
  CHECK(cni::parse_env(del).netns.empty());
  CHECK(cni::parse_env({{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/x"}}).command == "GC");
  CHECK(cni::parse_env({{"CNI_COMMAND", "STATUS"}, {"CNI_PATH", "/x"}}).path.size() == 1);
  CHECK(cni::parse_env({{"CNI_COMMAND", "VERSION"}}).command == "VERSION");
  CHECK(cni::parse_env({}).command.empty());
}

TEST_CASE("unknown CNI_COMMAND is code 4", "[env]") {
  auto e = env_error(base("UPDATE"));
  CHECK(e.code() == 4);
  CHECK_THAT(e.msg(), Catch::Contains("CNI_COMMAND") && Catch::Contains("\"UPDATE\""));
}

TEST_CASE("interface names are checked as the kernel does", "[env]") {
  for (const char* bad : {"0123456789abcdef", "a/b", ".", "..", "eth 0", "eth:0", "eth\n0"}) {
    auto env = base("ADD");
    env["CNI_IFNAME"] = bad;
    auto e = env_error(env);
    CHECK(e.code() == 4);
    CHECK_THAT(e.msg(), Catch::StartsWith("CNI_IFNAME"));
  }
  for (const char* good : {"0123456789abcde", "net1", "eth0.100", "e"}) {
    auto env = base("ADD");
    env["CNI_IFNAME"] = good;
    CHECK(cni::parse_env(env).ifname == good);
  }
}

TEST_CASE("container IDs follow the spec pattern", "[env]") {
  for (const char* bad : {"../etc", "-abc", "_x", "a/b", "a b", "a\nb", ".hidden"}) {
    auto env = base("DEL");
    env["CNI_CONTAINERID"] = bad;
    auto e = env_error(env);
    CHECK(e.code() == 4);
    CHECK_THAT(e.msg(), Catch::StartsWith("CNI_CONTAINERID"));
  }
  auto env = base("DEL");
  env["CNI_CONTAINERID"] = "cnitool-3e2a_b.c-d";
  CHECK(cni::parse_env(env).container_id == "cnitool-3e2a_b.c-d");
}

TEST_CASE("CNI_ARGS: malformed pairs are code 4, IgnoreUnknown accepts 1 and true", "[env]") {
  for (const char* bad : {"IP", "=x", "IgnoreUnknown=maybe"}) {
    try {
      cni::parse_cni_args(bad);
      FAIL("accepted " << bad);
    } catch (const cni::Error& e) {
      CHECK(e.code() == 4);
      CHECK_THAT(e.msg(), Catch::StartsWith("CNI_ARGS"));
    }
  }
  CHECK(cni::parse_cni_args("IgnoreUnknown=true").ignore_unknown);
  CHECK(cni::parse_cni_args("IgnoreUnknown=1").ignore_unknown);
  CHECK(cni::parse_cni_args("IgnoreUnknown=TRUE;").ignore_unknown);
  CHECK_FALSE(cni::parse_cni_args("IgnoreUnknown=0").ignore_unknown);
  CHECK(cni::parse_cni_args("").pairs.empty());
  CHECK(cni::parse_cni_args("A=b=c").get("A") == "b=c");
}

TEST_CASE("unknown CNI_ARGS keys are rejected unless IgnoreUnknown", "[env]") {
  auto strict = cni::parse_cni_args("K8S_POD_NAME=a;FOO=1");
  try {
    cni::check_known_args(strict, {"IP"});
    FAIL("FOO accepted");
  } catch (const cni::Error& e) {
    CHECK(e.code() == 4);
    CHECK_THAT(e.msg(), Catch::Contains("\"FOO\""));
  }
  CHECK_NOTHROW(cni::check_known_args(strict, {"FOO"}));
  auto lenient = cni::parse_cni_args("IgnoreUnknown=1;FOO=1");
  CHECK_NOTHROW(cni::check_known_args(lenient, {}));
}

TEST_CASE("env_from_environ splits on the first '='", "[env]") {
  char a[] = "A=1=2";
  char b[] = "NOEQUALS";
  char c[] = "EMPTY=";
  char* envp[] = {a, b, c, nullptr};
  auto env = cni::env_from_environ(envp);
  CHECK(env.size() == 2);
  CHECK(env["A"] == "1=2");
  CHECK(env["EMPTY"].empty());
}
