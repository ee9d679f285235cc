#include "libcni/protocol/skel.h"
#include "plugins/host-local/host_local.h"

int main(int argc, char** argv, char** envp) {
  return cni::skel_main(host_local::plugin(), argc, argv, envp);
}
