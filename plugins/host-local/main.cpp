#include "libcni/protocol/skel.h"
#include "plugins/host-local/host_local.h"

int main(int, char**, char** envp) { return cni::skel_main(host_local::plugin(), envp); }
