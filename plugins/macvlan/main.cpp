#include "libcni/protocol/skel.h"
#include "plugins/macvlan/macvlan.h"

int main(int argc, char** argv, char** envp) {
  return cni::skel_main(macvlan::plugin(), argc, argv, envp);
}
