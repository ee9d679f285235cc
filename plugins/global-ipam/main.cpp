#include <iostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"
#include "libcni/protocol/skel.h"
#include "plugins/global-ipam/cli.h"
#include "plugins/global-ipam/global_ipam.h"

// Runtimes exec a CNI plugin without arguments; with arguments, this is the operator's tool.
int main(int argc, char** argv, char** envp) {
  if (argc > 1) {
    return global_ipam::cli_main(std::vector<std::string>(argv + 1, argv + argc),
                                 cni::env_from_environ(envp), std::cout, std::cerr);
  }
  return cni::skel_main(global_ipam::plugin(), envp);
}
