#include "cnitool/sha512.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace cni::tool {

std::array<uint8_t, 64> sha512(std::string_view data) {
  // Without this, first use loads the system's openssl.cnf, which may activate provider
  // modules a static binary cannot load; SHA-512 comes from the built-in default provider.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
  std::array<uint8_t, 64> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha512(), nullptr) != 1 ||
      len != out.size()) {
    // Only an allocation failure inside libcrypto gets here.
    throw std::runtime_error("SHA-512 of the netns path failed in libcrypto");
  }
  return out;
}

std::string to_hex(const uint8_t* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[bytes[i] >> 4]);
    s.push_back(kDigits[bytes[i] & 0xf]);
  }
  return s;
}

}  // namespace cni::tool
