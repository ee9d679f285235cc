// One etcd range request from a fresh process with cpp-httplib as Debian ships it
// (libcpp-httplib-dev: a shared library built with OpenSSL, zlib and brotli, not the
// upstream header-only form). Environment as probe_own.cpp.
#include <httplib.h>

#include <cstdlib>
#include <string>

int main() {
  const char* host = std::getenv("PROBE_HOST");
  const char* port = std::getenv("PROBE_PORT");
  const char* body = std::getenv("PROBE_BODY");
  if (!host || !port || !body) return 2;
  httplib::Client c(host, std::atoi(port));
  auto r = c.Post("/v3/kv/range", body, "application/json");
  return r && r->status == 200 ? 0 : 1;
}
