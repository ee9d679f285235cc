#pragma once

#include <memory>
#include <stdexcept>
#include <string>

struct nft_ctx;

// nftables through its library (libnftables), never the nft binary: commands in nft's own
// syntax, run against the network namespace of the calling thread as it is when the context is
// made. One run() is one netlink transaction: it applies whole or not at all.
//
// libnftables lives here, in the overlay, and not in libcni/kernel: the overlay agents are its
// only users. Debian ships it without a static archive, and with it come five more shared
// libraries (libmnl, libnftnl, libxtables, libjansson, libgmp): it is loaded (dlopen) when the
// first Nftables is made, so the CNI verbs of vxlan and ipip, which never make one, exec
// without it (they link everything else statically and glibc dynamically:
// plugins/vxlan/CMakeLists.txt). A library that cannot be loaded is an NftError naming it.
namespace overlay {

// What nftables (or the kernel behind it) refused: `what` is our summary, nft's own message
// follows.
class NftError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Nftables {
 public:
  Nftables();  // NftError when libnftables cannot make a context
  ~Nftables();
  Nftables(const Nftables&) = delete;
  Nftables& operator=(const Nftables&) = delete;

  // Runs `commands` and returns what nft printed (a listing). NftError with `what` and nft's
  // message when it fails.
  std::string run(const std::string& commands, const std::string& what);

 private:
  struct Free {
    void operator()(nft_ctx* ctx) const;
  };
  std::unique_ptr<nft_ctx, Free> ctx_;
};

}  // namespace overlay
