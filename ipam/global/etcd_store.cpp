#include "ipam/global/etcd_store.h"

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <utility>

#include "ipam/global/etcd_watch.h"
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

}  // namespace

std::string EtcdStore::range_end(std::string prefix) {
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

void EtcdStore::fail_over(size_t& current, size_t& tried, size_t endpoints, Deadline deadline) {
  using Clock = std::chrono::steady_clock;
  current = (current + 1) % endpoints;
  if (++tried % endpoints == 0) {
    // Every endpoint failed this round: wait a little (a leader election takes about a
    // second) before the next.
    auto pause = std::min<Clock::duration>(std::chrono::milliseconds(100), deadline - Clock::now());
    if (pause > Clock::duration::zero()) std::this_thread::sleep_for(pause);
  }
}

EtcdStore::EtcdStore(EtcdOptions options) : options_(std::move(options)) {
  if (options_.endpoints.empty()) throw std::invalid_argument("etcd store: no endpoints");
  while (!options_.prefix.empty() && options_.prefix.back() == '/') options_.prefix.pop_back();
  TlsFiles tls{options_.ca_file, options_.cert_file, options_.key_file};
  for (const auto& ep : options_.endpoints) {
    connections_.push_back(std::make_unique<HttpConnection>(HttpUrl::parse(ep), tls));
  }
}

EtcdStore::~EtcdStore() = default;

std::string EtcdStore::describe() const {
  std::string eps;
  for (const auto& e : options_.endpoints) eps += (eps.empty() ? "" : ",") + e;
  return "etcd store " + eps + " (prefix " + options_.prefix + ")";
}

void EtcdStore::prepare() {
  using Clock = std::chrono::steady_clock;
  HttpConnection& conn = *connections_[current_];
  if (conn.is_open()) return;
  auto start = Clock::now();
  try {
    conn.open(start + options_.timeout,
              std::min(options_.timeout, std::chrono::milliseconds(1000)));
  } catch (const HttpError&) {
    // Left for the request: it connects again and fails over as without preparing.
  }
  prepared_ += Clock::now() - start;
}

json EtcdStore::call(const std::string& path, const json& body) {
  using Clock = std::chrono::steady_clock;
  // A connection prepare() opened (or failed to) counts against this request's budget: an
  // ADD still gives up within timeoutMs of its first look at the store.
  auto deadline = Clock::now() + options_.timeout - std::exchange(prepared_, {});
  std::string payload = body.dump();
  std::string last_error;
  size_t tried = 0;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    HttpConnection& conn = *connections_[current_];
    const std::string& ep = options_.endpoints[current_];
    try {
      // A dead member refuses at once; a hung one must not eat the whole budget.
      HttpResponse r =
          conn.post(path, payload, deadline, std::min(left, std::chrono::milliseconds(1000)));
      ++traffic_.requests;
      traffic_.bytes_sent += static_cast<int64_t>(payload.size());
      traffic_.bytes_received += static_cast<int64_t>(r.body.size());
      if (r.status == 200) {
        try {
          return json::parse(r.body);
        } catch (const json::exception& e) {
          throw std::runtime_error("etcd " + ep + path + ": malformed answer: " + e.what());
        }
      }
      // 4xx: etcd refuses the request itself (retrying elsewhere cannot help), except "too
      // many requests" and a request timeout.
      if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429) {
        std::string msg = r.body;
        try {
          msg = json::parse(r.body).value("message", r.body);
        } catch (const json::exception&) {
        }
        throw std::runtime_error("etcd " + ep + path + " refused the request (HTTP " +
                                 std::to_string(r.status) + "): " + msg);
      }
      last_error = ep + ": HTTP " + std::to_string(r.status) + " " + r.body;
    } catch (const HttpError& e) {
      // The attempt the deadline cut short says less than the failures before it (a TLS
      // error, a refused connection): keep those.
      if (!e.timed_out() || last_error.empty()) last_error = e.what();
    }
    conn.close();  // the next request goes elsewhere
    fail_over(current_, tried, options_.endpoints.size(), deadline);
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
  std::string end = range_end(start);
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

json EtcdStore::range_ops(const std::vector<Read>& reads) const {
  json ops = json::array();
  for (const auto& r : reads) {
    std::string k = full_key(r.key);
    json range = {{"key", b64(k)}};
    if (r.prefix) range["range_end"] = b64(range_end(k));
    if (r.keys_only) range["keys_only"] = true;
    ops.push_back({{"request_range", range}});
  }
  return ops;
}

std::vector<std::vector<KvEntry>> EtcdStore::range_results(const json& txn,
                                                           const std::vector<Read>& reads) const {
  const json& responses = txn.value("responses", json::array());
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

std::vector<std::vector<KvEntry>> EtcdStore::read_batch(const std::vector<Read>& reads) {
  if (reads.empty()) return {};
  return range_results(call("/v3/kv/txn", {{"success", range_ops(reads)}}), reads);
}

json EtcdStore::write_txn(const std::vector<Write>& writes) const {
  json compares = json::array();
  json ops = json::array();
  for (const auto& w : writes) {
    std::string k = b64(full_key(w.key));
    compares.push_back(
        {{"key", k}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", w.expected}});
    if (w.erase) {
      ops.push_back({{"request_delete_range", {{"key", k}}}});
    } else {
      ops.push_back({{"request_put", {{"key", k}, {"value", b64(w.value)}}}});
    }
  }
  return {{"compare", compares}, {"success", ops}};
}

std::vector<int64_t> EtcdStore::revisions_of(const json& txn, const std::vector<Write>& writes) {
  // Every key a txn writes gets the txn's revision as its mod_revision.
  int64_t rev = as_int(txn.at("header"), "revision");
  std::vector<int64_t> out;
  for (const auto& w : writes) out.push_back(w.erase ? 0 : rev);
  return out;
}

std::optional<std::vector<int64_t>> EtcdStore::put_all_if(const std::vector<Write>& writes) {
  for (const auto& w : writes) {
    if (w.erase && w.expected == 0) return std::nullopt;  // "delete if absent" deletes nothing
  }
  json r = call("/v3/kv/txn", write_txn(writes));
  if (!r.value("succeeded", false)) return std::nullopt;
  return revisions_of(r, writes);
}

KvStore::Outcome EtcdStore::put_all_if_or_read(const std::vector<Write>& writes,
                                               const std::vector<Read>& reads) {
  for (const auto& w : writes) {
    if (w.erase && w.expected == 0) return {std::nullopt, read_batch(reads)};
  }
  json txn = write_txn(writes);
  txn["failure"] = range_ops(reads);
  json r = call("/v3/kv/txn", txn);
  if (r.value("succeeded", false)) return {revisions_of(r, writes), {}};
  return {std::nullopt, range_results(r, reads)};
}

std::unique_ptr<KvWatch> EtcdStore::watch(const std::vector<std::string>& prefixes) {
  return std::make_unique<EtcdWatch>(options_, prefixes, current_);
}

void EtcdStore::ping() {
  json r = call("/v3/maintenance/status", json::object());
  if (r.contains("errors") && !r["errors"].empty()) {
    throw cni::Error(cni::kErrTryAgainLater,
                     describe() + ": " + current_endpoint() + " reports " + r["errors"].dump());
  }
}

}  // namespace ipam
