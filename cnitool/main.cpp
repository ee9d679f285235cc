#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cnitool/cli.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/env.h"

int main(int argc, char** argv, char** envp) {
  std::string cwd;
  std::vector<char> buf(4096);
  if (getcwd(buf.data(), buf.size()) != nullptr) cwd = buf.data();
  cni::SpawnRunner runner;
  return cni::tool::cnitool_main(argc, argv, cni::env_from_environ(envp), cwd, std::cout, std::cerr,
                                 runner);
}
