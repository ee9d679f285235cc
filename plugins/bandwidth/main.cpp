#include "libcni/protocol/skel.h"
#include "plugins/bandwidth/bandwidth.h"

int main(int, char**, char** envp) { return cni::skel_main(bandwidth::plugin(), envp); }
