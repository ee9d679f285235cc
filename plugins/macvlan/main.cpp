#include "libcni/protocol/skel.h"
#include "plugins/macvlan/macvlan.h"

int main(int, char**, char** envp) { return cni::skel_main(macvlan::plugin(), envp); }
