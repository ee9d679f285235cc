#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipam/global/http_client.h"
#include "ipam/global/store.h"

namespace ipam {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379", "https://10.0.0.1:2379"
  std::string prefix;                  // every key lives under "<prefix>/"
  std::string ca_file;                 // trust anchors for https endpoints (else the system's)
  std::string cert_file;               // TLS client certificate and key (client-cert-auth)
  std::string key_file;
  // How long one operation may keep failing over between endpoints before it gives up
  // with cni::Error{kErrTryAgainLater}.
  std::chrono::milliseconds timeout{10000};
};

// A KvStore on etcd v3, spoken through its JSON gateway (POST /v3/kv/range, /v3/kv/txn; keys
// and values base64) with our own HTTP/1.1 client (http_client.h: a socket, OpenSSL only for
// https://), so neither gRPC nor libcurl is loaded by a plugin exec.
//
// Compare-and-swap is a txn comparing the key's mod_revision (0 for an absent key) with
// put (or delete) on success; the new revision is the txn's header revision. Lists are read
// in pages of 500 at the revision of the first page, so a list is one consistent snapshot.
// Reads are linearizable (etcd's default).
//
// Failover: requests go to the endpoint that last answered; on a transport error, a
// timeout or a 5xx answer (no leader, a member going away) the next endpoint is tried, and
// the round repeats with a short pause until the operation's timeout, after which it fails
// with kErrTryAgainLater naming the last error. A 4xx answer (a request etcd refuses) is a
// bug or a misconfiguration: std::runtime_error at once. A write retried after an answer
// was lost may find that its first attempt happened (the compare then fails): the
// allocator re-reads and recognises its own write.
//
// Proxies from the environment are ignored: the store talks to the endpoints directly. One
// connection is open at a time, to the current endpoint, and kept between requests.
class EtcdStore : public KvStore {
 public:
  explicit EtcdStore(EtcdOptions options);
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  std::optional<KvEntry> get(const std::string& key) override;
  std::vector<KvEntry> list(const std::string& prefix, bool keys_only = false) override;
  std::optional<int64_t> put_if(const std::string& key, const std::string& value,
                                int64_t expected) override;
  bool erase_if(const std::string& key, int64_t expected) override;
  // One txn of ranges: one round trip, one snapshot.
  std::vector<std::vector<KvEntry>> read_batch(const std::vector<Read>& reads) override;
  // One txn comparing every key's mod_revision: all or nothing.
  std::optional<std::vector<int64_t>> put_all_if(const std::vector<Write>& writes) override;
  // The same txn with the reads as its failure branch: one round trip either way.
  Outcome put_all_if_or_read(const std::vector<Write>& writes,
                             const std::vector<Read>& reads) override;
  bool transactions() const override { return true; }
  bool compact_values() const override { return true; }
  // /v3/watch streams, one per prefix (etcd_watch.h).
  std::unique_ptr<KvWatch> watch(const std::vector<std::string>& prefixes) override;
  // Connects to the current endpoint unless connected (TLS included), within the timeout.
  void prepare() override;
  // Maintenance status of the answering member; an alarm (NOSPACE, CORRUPT) is an error.
  void ping() override;
  std::string describe() const override;

  // The smallest key greater than every key starting with `prefix` (etcd's range_end).
  static std::string range_end(std::string prefix);
  // After a failed attempt on endpoint `current`: the next one, and once every endpoint has
  // failed in this round (`tried` counts attempts) a short pause, never past `deadline`.
  static void fail_over(size_t& current, size_t& tried, size_t endpoints, Deadline deadline);

  // The endpoint that answered last (tests of failover).
  const std::string& current_endpoint() const { return options_.endpoints[current_]; }

  // What this store has asked so far: requests answered and the JSON bodies' bytes (headers
  // not counted). The bench's per-allocation figures; nothing in the product reads them.
  struct Traffic {
    int64_t requests = 0;
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
  };
  const Traffic& traffic() const { return traffic_; }

 private:
  nlohmann::json call(const std::string& path, const nlohmann::json& body);
  nlohmann::json range_ops(const std::vector<Read>& reads) const;
  std::vector<std::vector<KvEntry>> range_results(const nlohmann::json& txn,
                                                  const std::vector<Read>& reads) const;
  nlohmann::json write_txn(const std::vector<Write>& writes) const;
  static std::vector<int64_t> revisions_of(const nlohmann::json& txn,
                                           const std::vector<Write>& writes);
  std::string full_key(const std::string& key) const { return options_.prefix + "/" + key; }

  EtcdOptions options_;
  std::vector<std::unique_ptr<HttpConnection>> connections_;  // one per endpoint
  size_t current_ = 0;
  Traffic traffic_;
  // What prepare() spent since the last request: taken from the next request's timeout.
  std::chrono::steady_clock::duration prepared_ = {};
};

}  // namespace ipam
