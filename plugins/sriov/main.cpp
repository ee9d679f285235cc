#include "libcni/protocol/skel.h"
#include "plugins/sriov/sriov.h"

int main(int argc, char** argv, char** envp) {
  return cni::skel_main(sriov::plugin(), argc, argv, envp);
}
