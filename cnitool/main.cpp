#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cnitool/cli.h"
#include "libcni/core/error.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/env.h"

int main(int argc, char** argv, char** envp) {
  std::string cwd;
  std::vector<char> buf(4096);
  if (getcwd(buf.data(), buf.size()) != nullptr) cwd = buf.data();
  const cni::EnvMap env = cni::env_from_environ(envp);
  // Every plugin cnitool runs is bounded as a plugin bounds its delegates (60 s, or
  // STRAIT_DELEGATE_TIMEOUT): a plugin that never exits fails the verb instead of hanging it.
  cni::SpawnOptions plugins;
  try {
    plugins.timeout = cni::delegate_timeout(env);
  } catch (const cni::Error& e) {
    std::cerr << "cnitool: " << e.msg() << "\n";
    return 1;
  }
  cni::SpawnRunner runner(plugins);
  return cni::tool::cnitool_main(argc, argv, env, cwd, std::cout, std::cerr, runner);
}
