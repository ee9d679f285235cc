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
// only users, and Debian ships it without a static archive, so only the executables that link
// the overlay (vxlan, ipip) are linked dynamically (plugins/vxlan/CMakeLists.txt).
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
