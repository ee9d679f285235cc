#include "libcni/protocol/skel.h"
#include "plugins/sriov/sriov.h"

int main(int, char**, char** envp) { return cni::skel_main(sriov::plugin(), envp); }
