#include "libcni/protocol/skel.h"
#include "plugins/ipip/ipip.h"
#include "plugins/ipip/sync.h"

// Runtimes exec a CNI plugin without arguments; with arguments (other than --version and
// --help), this is the route agent.
int main(int argc, char** argv, char** envp) {
  return cni::skel_main(ipip::plugin(), argc, argv, envp, ipip::sync_main);
}
