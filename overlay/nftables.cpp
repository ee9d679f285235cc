#include "overlay/nftables.h"

#include <dlfcn.h>
#include <nftables/libnftables.h>

#include <mutex>

namespace overlay {

namespace {

// libnftables, loaded on first use (see nftables.h): the functions we call, by their names in
// the library and with the header's types, so a changed signature fails to compile.
struct Api {
  decltype(&nft_ctx_new) ctx_new = nullptr;
  decltype(&nft_ctx_free) ctx_free = nullptr;
  decltype(&nft_ctx_buffer_output) buffer_output = nullptr;
  decltype(&nft_ctx_buffer_error) buffer_error = nullptr;
  decltype(&nft_run_cmd_from_buffer) run_cmd_from_buffer = nullptr;
  decltype(&nft_ctx_get_output_buffer) get_output_buffer = nullptr;
  decltype(&nft_ctx_get_error_buffer) get_error_buffer = nullptr;
};

constexpr char kLibrary[] = "libnftables.so.1";

template <class F>
void resolve(void* lib, F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) throw NftError(std::string("libnftables: ") + kLibrary + " has no " + name);
}

// Loaded once per process (and never unloaded); a failure is thrown again to every caller.
const Api& api() {
  static std::once_flag once;
  static Api a;
  static std::string failed;
  std::call_once(once, [] {
    // Not RTLD_GLOBAL: its symbols (and those of its own libraries) stay out of ours.
    void* lib = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      failed = std::string("libnftables: cannot load ") + kLibrary + ": " +
               (why ? why : "unknown error") + " (Debian: package libnftables1)";
      return;
    }
    try {
      resolve(lib, a.ctx_new, "nft_ctx_new");
      resolve(lib, a.ctx_free, "nft_ctx_free");
      resolve(lib, a.buffer_output, "nft_ctx_buffer_output");
      resolve(lib, a.buffer_error, "nft_ctx_buffer_error");
      resolve(lib, a.run_cmd_from_buffer, "nft_run_cmd_from_buffer");
      resolve(lib, a.get_output_buffer, "nft_ctx_get_output_buffer");
      resolve(lib, a.get_error_buffer, "nft_ctx_get_error_buffer");
    } catch (const NftError& e) {
      failed = e.what();
    }
  });
  if (!failed.empty()) throw NftError(failed);
  return a;
}

}  // namespace

void Nftables::Free::operator()(nft_ctx* ctx) const { api().ctx_free(ctx); }

Nftables::Nftables() : ctx_(api().ctx_new(NFT_CTX_DEFAULT)) {
  if (!ctx_) throw NftError("libnftables could not make a context (out of memory?)");
  // Listings and errors come back to us instead of going to the process's stdout and stderr.
  if (api().buffer_output(ctx_.get()) != 0 || api().buffer_error(ctx_.get()) != 0) {
    throw NftError("libnftables could not buffer its output");
  }
}

Nftables::~Nftables() = default;

std::string Nftables::run(const std::string& commands, const std::string& what) {
  const int rc = api().run_cmd_from_buffer(ctx_.get(), commands.c_str());
  // Both buffers are read (and so emptied) after every run, so the next one starts clean.
  std::string out = api().get_output_buffer(ctx_.get());
  std::string err = api().get_error_buffer(ctx_.get());
  if (rc != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw NftError(what + ": " + (err.empty() ? "nftables failed without a message" : err));
  }
  return out;
}

}  // namespace overlay
