// One etcd range request from a fresh process with our HTTP client (ipam/global/http_client.h),
// linked like the plugins (static): what an exec of global-ipam pays to talk to etcd.
// Environment (the bench's spawn server passes no arguments): PROBE_HOST, PROBE_PORT,
// PROBE_BODY; exit 0 on HTTP 200.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ipam/global/http_client.h"

int main() {
  const char* host = std::getenv("PROBE_HOST");
  const char* port = std::getenv("PROBE_PORT");
  const char* body = std::getenv("PROBE_BODY");
  if (!host || !port || !body) return 2;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  try {
    ipam::HttpConnection c(ipam::HttpUrl::parse("http://" + std::string(host) + ":" + port), {});
    return c.post("/v3/kv/range", body, deadline, std::chrono::seconds(1)).status == 200 ? 0 : 1;
  } catch (const ipam::HttpError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
