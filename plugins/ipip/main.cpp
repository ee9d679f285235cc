#include <iostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"
#include "libcni/protocol/skel.h"
#include "plugins/ipip/ipip.h"
#include "plugins/ipip/sync.h"

// Runtimes exec a CNI plugin without arguments; with arguments, this is the route agent.
int main(int argc, char** argv, char** envp) {
  if (argc > 1) {
    return ipip::sync_main(std::vector<std::string>(argv + 1, argv + argc),
                           cni::env_from_environ(envp), std::cout, std::cerr);
  }
  return cni::skel_main(ipip::plugin(), envp);
}
