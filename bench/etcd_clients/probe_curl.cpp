// One etcd range request from a fresh process with libcurl (the client global-ipam used
// before: Debian's libcurl4-openssl, 36 shared objects). Environment as probe_own.cpp.
#include <curl/curl.h>

#include <cstdlib>
#include <string>

namespace {
size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}
}  // namespace

int main() {
  const char* host = std::getenv("PROBE_HOST");
  const char* port = std::getenv("PROBE_PORT");
  const char* body = std::getenv("PROBE_BODY");
  if (!host || !port || !body) return 2;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* h = curl_easy_init();
  std::string url = "http://" + std::string(host) + ":" + port + "/v3/kv/range";
  std::string out;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  long status = 0;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return status == 200 ? 0 : 1;
}
