#include "ipam/host_local.h"
#include "libcni/skel.h"

int main(int, char**, char** envp) { return cni::skel_main(ipam::host_local::plugin(), envp); }
