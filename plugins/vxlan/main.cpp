#include "libcni/protocol/skel.h"
#include "plugins/vxlan/sync.h"
#include "plugins/vxlan/vxlan.h"

// Runtimes exec a CNI plugin without arguments; with arguments (other than --version and
// --help), this is the route agent.
int main(int argc, char** argv, char** envp) {
  return cni::skel_main(vxlan::plugin(), argc, argv, envp, vxlan::sync_main);
}
