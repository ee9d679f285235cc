// What gRPC would cost an exec before it sends anything: loading Debian's libgrpc++ (the
// runtime of libgrpc++-dev, with its 55 shared objects) and resolving one symbol. A lower
// bound: no channel, no HTTP/2 connection, no protobuf.
#include <dlfcn.h>

#include <cstdio>

int main() {
  void* lib = dlopen("libgrpc++.so.1.51", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  return dlsym(lib,
               "_ZN4grpc13CreateChannelERKNSt7__cxx1112basic_stringIcSt11char_"
               "traitsIcESaIcEEERKSt10shared_ptrINS_18ChannelCredentialsEE")
             ? 0
             : 1;
}
