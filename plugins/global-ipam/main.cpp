#include "libcni/protocol/skel.h"
#include "plugins/global-ipam/cli.h"
#include "plugins/global-ipam/global_ipam.h"

// Runtimes exec a CNI plugin without arguments; with arguments (other than --version and
// --help), this is the operator's tool.
int main(int argc, char** argv, char** envp) {
  return cni::skel_main(global_ipam::plugin(), argc, argv, envp, global_ipam::cli_main);
}
