#include "libcni/protocol/skel.h"
#include "plugins/bandwidth/bandwidth.h"

int main(int argc, char** argv, char** envp) {
  return cni::skel_main(bandwidth::plugin(), argc, argv, envp);
}
