#include "overlay/nftables.h"

#include <nftables/libnftables.h>

namespace overlay {

void Nftables::Free::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

Nftables::Nftables() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
  if (!ctx_) throw NftError("libnftables could not make a context (out of memory?)");
  // Listings and errors come back to us instead of going to the process's stdout and stderr.
  if (nft_ctx_buffer_output(ctx_.get()) != 0 || nft_ctx_buffer_error(ctx_.get()) != 0) {
    throw NftError("libnftables could not buffer its output");
  }
}

Nftables::~Nftables() = default;

std::string Nftables::run(const std::string& commands, const std::string& what) {
  const int rc = nft_run_cmd_from_buffer(ctx_.get(), commands.c_str());
  // Both buffers are read (and so emptied) after every run, so the next one starts clean.
  std::string out = nft_ctx_get_output_buffer(ctx_.get());
  std::string err = nft_ctx_get_error_buffer(ctx_.get());
  if (rc != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw NftError(what + ": " + (err.empty() ? "nftables failed without a message" : err));
  }
  return out;
}

}  // namespace overlay
