#include "ipam/global/etcd_store.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "libcni/core/base64.h"
#include "libcni/core/error.h"

namespace ipam {

using nlohmann::json;

namespace {

constexpr int64_t kPageSize = 500;

// int64 fields arrive as JSON strings (proto3 JSON mapping), absent when zero.
int64_t as_int(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) return std::stoll(it->get<std::string>());
  throw std::runtime_error(std::string("etcd: field ") + key + " is not an integer");
}

std::string b64(std::string_view s) { return cni::base64_encode(s); }

std::string unb64(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return "";
  auto s = cni::base64_decode(it->get<std::string>());
  if (!s) throw std::runtime_error(std::string("etcd: field ") + key + " is not base64");
  return *s;
}

// The smallest key greater than every key starting with `prefix` (etcd's range_end).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto c = static_cast<unsigned char>(prefix.back());
    if (c < 0xff) {
      prefix.back() = static_cast<char>(c + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

}  // namespace

namespace {

// libcurl, loaded when the first etcd store is made. Linking it would cost every exec of the
// executables that include this library about 7 ms (libcurl pulls in 30 shared libraries:
// TLS, Kerberos, LDAP, ...), also when they use the file store or answer VERSION; plugin
// execs are on the pod start path. The table is filled once and never changes.
struct CurlApi {
  decltype(&curl_global_init) global_init = nullptr;
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_reset) easy_reset = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
};

const CurlApi& curl_api() {
  static std::once_flag once;
  static CurlApi api;
  static std::string error;
  std::call_once(once, [] {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = dlerror();
      return;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(lib, name);
      if (!p && error.empty()) error = std::string("libcurl.so.4 lacks ") + name;
      return p;
    };
    CurlApi a;
    a.global_init = reinterpret_cast<decltype(a.global_init)>(sym("curl_global_init"));
    a.easy_init = reinterpret_cast<decltype(a.easy_init)>(sym("curl_easy_init"));
    a.easy_cleanup = reinterpret_cast<decltype(a.easy_cleanup)>(sym("curl_easy_cleanup"));
    a.easy_reset = reinterpret_cast<decltype(a.easy_reset)>(sym("curl_easy_reset"));
    a.easy_perform = reinterpret_cast<decltype(a.easy_perform)>(sym("curl_easy_perform"));
    a.easy_strerror = reinterpret_cast<decltype(a.easy_strerror)>(sym("curl_easy_strerror"));
    a.slist_append = reinterpret_cast<decltype(a.slist_append)>(sym("curl_slist_append"));
    a.slist_free_all = reinterpret_cast<decltype(a.slist_free_all)>(sym("curl_slist_free_all"));
    a.easy_setopt = reinterpret_cast<decltype(a.easy_setopt)>(sym("curl_easy_setopt"));
    a.easy_getinfo = reinterpret_cast<decltype(a.easy_getinfo)>(sym("curl_easy_getinfo"));
    if (!error.empty()) return;  // the library stays loaded; harmless
    a.global_init(CURL_GLOBAL_DEFAULT);
    api = a;
  });
  if (!api.easy_init) {
    throw cni::Error(cni::kErrIo, "the etcd store needs libcurl (libcurl.so.4): " + error);
  }
  return api;
}

}  // namespace

// One libcurl easy handle, kept for the store's lifetime so connections are reused.
struct EtcdStore::Curl {
  Curl() : api(curl_api()) {
    handle = api.easy_init();
    if (!handle) throw std::runtime_error("etcd store: curl_easy_init failed");
    headers = api.slist_append(nullptr, "Content-Type: application/json");
    // No "Expect: 100-continue" round trip before bodies over 1 KiB (blocks are larger).
    headers = api.slist_append(headers, "Expect:");
  }
  ~Curl() {
    api.slist_free_all(headers);
    api.easy_cleanup(handle);
  }
  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;
  const CurlApi& api;
  CURL* handle = nullptr;
  curl_slist* headers = nullptr;
};

EtcdStore::EtcdStore(EtcdOptions options)
    : options_(std::move(options)), curl_(std::make_unique<Curl>()) {
  if (options_.endpoints.empty()) throw std::invalid_argument("etcd store: no endpoints");
  while (!options_.prefix.empty() && options_.prefix.back() == '/') options_.prefix.pop_back();
}

EtcdStore::~EtcdStore() = default;

std::string EtcdStore::describe() const {
  std::string eps;
  for (const auto& e : options_.endpoints) eps += (eps.empty() ? "" : ",") + e;
  return "etcd store " + eps + " (prefix " + options_.prefix + ")";
}

json EtcdStore::call(const std::string& path, const json& body) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + options_.timeout;
  std::string payload = body.dump();
  std::string last_error;
  CURL* h = curl_->handle;
  const CurlApi& api = curl_->api;
  size_t tried = 0;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    const std::string& ep = options_.endpoints[current_];
    std::string url = ep + path;
    std::string response;
    api.easy_reset(h);
    api.easy_setopt(h, CURLOPT_URL, url.c_str());
    api.easy_setopt(h, CURLOPT_POST, 1L);
    api.easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
    api.easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    api.easy_setopt(h, CURLOPT_HTTPHEADER, curl_->headers);
    api.easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    api.easy_setopt(h, CURLOPT_WRITEDATA, &response);
    api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(h, CURLOPT_NOPROXY, "*");
    api.easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
    // A dead member refuses at once; a hung one must not eat the whole budget.
    api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(left.count(), 1000));
    if (!options_.ca_file.empty()) api.easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!options_.cert_file.empty()) {
      api.easy_setopt(h, CURLOPT_SSLCERT, options_.cert_file.c_str());
      api.easy_setopt(h, CURLOPT_SSLKEY, options_.key_file.c_str());
    }
    CURLcode rc = api.easy_perform(h);
    long status = 0;
    if (rc == CURLE_OK) api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status == 200) {
      try {
        return json::parse(response);
      } catch (const json::exception& e) {
        throw std::runtime_error("etcd " + url + ": malformed answer: " + e.what());
      }
    }
    // 4xx: etcd refuses the request itself (retrying elsewhere cannot help), except "too
    // many requests" and a request timeout.
    if (rc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429) {
      std::string msg = response;
      try {
        msg = json::parse(response).value("message", response);
      } catch (const json::exception&) {
      }
      throw std::runtime_error("etcd " + url + " refused the request (HTTP " +
                               std::to_string(status) + "): " + msg);
    }
    // The attempt the deadline cut short says less than the failures before it (a TLS
    // error, a refused connection): keep those.
    if (rc != CURLE_OPERATION_TIMEDOUT || last_error.empty()) {
      last_error = ep + ": " +
                   (rc != CURLE_OK ? std::string(api.easy_strerror(rc))
                                   : "HTTP " + std::to_string(status) + " " + response);
    }
    current_ = (current_ + 1) % options_.endpoints.size();
    if (++tried % options_.endpoints.size() == 0) {
      // Every endpoint failed this round: wait a little (a leader election takes about a
      // second) before the next.
      auto pause =
          std::min<Clock::duration>(std::chrono::milliseconds(100), deadline - Clock::now());
      if (pause > Clock::duration::zero()) std::this_thread::sleep_for(pause);
    }
  }
  throw cni::Error(cni::kErrTryAgainLater,
                   describe() + " unreachable for " + std::to_string(options_.timeout.count()) +
                       " ms (last error: " + (last_error.empty() ? "none" : last_error) + ")");
}

std::optional<KvEntry> EtcdStore::get(const std::string& key) {
  json r = call("/v3/kv/range", {{"key", b64(full_key(key))}});
  auto kvs = r.find("kvs");
  if (kvs == r.end() || kvs->empty()) return std::nullopt;
  const json& kv = kvs->front();
  return KvEntry{key, unb64(kv, "value"), as_int(kv, "mod_revision")};
}

std::vector<KvEntry> EtcdStore::list(const std::string& prefix, bool keys_only) {
  std::string start = full_key(prefix);
  std::string end = prefix_end(start);
  size_t strip = options_.prefix.size() + 1;
  std::vector<KvEntry> out;
  int64_t revision = 0;
  for (;;) {
    json body = {{"key", b64(start)}, {"range_end", b64(end)}, {"limit", kPageSize}};
    if (keys_only) body["keys_only"] = true;
    if (revision) body["revision"] = revision;  // later pages: the first page's snapshot
    json r = call("/v3/kv/range", body);
    if (!revision) revision = as_int(r.at("header"), "revision");
    std::string last;
    for (const auto& kv : r.value("kvs", json::array())) {
      last = unb64(kv, "key");
      out.push_back(KvEntry{last.substr(strip), keys_only ? "" : unb64(kv, "value"),
                            as_int(kv, "mod_revision")});
    }
    if (!r.value("more", false) || last.empty()) break;
    start = last + std::string(1, '\0');
  }
  return out;
}

std::optional<int64_t> EtcdStore::put_if(const std::string& key, const std::string& value,
                                         int64_t expected) {
  std::string k = b64(full_key(key));
  json body = {{"compare",
                {{{"key", k}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", expected}}}},
               {"success", {{{"request_put", {{"key", k}, {"value", b64(value)}}}}}}};
  json r = call("/v3/kv/txn", body);
  if (!r.value("succeeded", false)) return std::nullopt;
  return as_int(r.at("header"), "revision");
}

bool EtcdStore::erase_if(const std::string& key, int64_t expected) {
  std::string k = b64(full_key(key));
  json body = {{"compare",
                {{{"key", k}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", expected}}}},
               {"success", {{{"request_delete_range", {{"key", k}}}}}}};
  if (expected == 0) return false;  // "delete if absent" deletes nothing
  json r = call("/v3/kv/txn", body);
  return r.value("succeeded", false);
}

std::vector<std::vector<KvEntry>> EtcdStore::read_batch(const std::vector<Read>& reads) {
  if (reads.empty()) return {};
  json ops = json::array();
  for (const auto& r : reads) {
    std::string k = full_key(r.key);
    json range = {{"key", b64(k)}};
    if (r.prefix) range["range_end"] = b64(prefix_end(k));
    if (r.keys_only) range["keys_only"] = true;
    ops.push_back({{"request_range", range}});
  }
  json res = call("/v3/kv/txn", {{"success", ops}});
  const json& responses = res.at("responses");
  if (responses.size() != reads.size()) {
    throw std::runtime_error("etcd: txn answered " + std::to_string(responses.size()) + " of " +
                             std::to_string(reads.size()) + " reads");
  }
  size_t strip = options_.prefix.size() + 1;
  std::vector<std::vector<KvEntry>> out;
  for (size_t i = 0; i < reads.size(); ++i) {
    std::vector<KvEntry> entries;
    const json& rr = responses[i].at("response_range");
    for (const auto& kv : rr.value("kvs", json::array())) {
      entries.push_back(KvEntry{unb64(kv, "key").substr(strip),
                                reads[i].keys_only ? "" : unb64(kv, "value"),
                                as_int(kv, "mod_revision")});
    }
    out.push_back(std::move(entries));
  }
  return out;
}

std::optional<std::vector<int64_t>> EtcdStore::put_all_if(const std::vector<Write>& writes) {
  json compares = json::array();
  json puts = json::array();
  for (const auto& w : writes) {
    std::string k = b64(full_key(w.key));
    compares.push_back(
        {{"key", k}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", w.expected}});
    puts.push_back({{"request_put", {{"key", k}, {"value", b64(w.value)}}}});
  }
  json r = call("/v3/kv/txn", {{"compare", compares}, {"success", puts}});
  if (!r.value("succeeded", false)) return std::nullopt;
  return std::vector<int64_t>(writes.size(), as_int(r.at("header"), "revision"));
}

void EtcdStore::ping() {
  json r = call("/v3/maintenance/status", json::object());
  if (r.contains("errors") && !r["errors"].empty()) {
    throw cni::Error(cni::kErrTryAgainLater,
                     describe() + ": " + current_endpoint() + " reports " + r["errors"].dump());
  }
}

}  // namespace ipam
