#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ipam/global/etcd_store.h"
#include "ipam/global/http_client.h"
#include "ipam/global/store.h"
#include "libcni/core/fd.h"

namespace ipam {

// KvStore::watch of the etcd store: one /v3/watch stream per prefix (the JSON gateway takes
// one create_request per HTTP request), all on one member, each its own connection. The
// constructor returns once etcd has confirmed every stream ("created"), so a write after it
// is seen. A stream that ends or breaks, a watch etcd cancels (a compaction), and a member
// that stays silent for KvWatch::kProbeAfter and then fails a linearizable read (it is frozen,
// or cut off from the quorum) close every stream; they are opened again on the next member
// that answers, failing over as EtcdStore does, and wait() says kResync.
class EtcdWatch : public KvWatch {
 public:
  // `first` is the endpoint to try first (the store's current one).
  EtcdWatch(const EtcdOptions& options, std::vector<std::string> prefixes, size_t first);
  Event wait(std::chrono::milliseconds timeout) override;
  void interrupt() override;

 private:
  struct Stream {
    std::string prefix;  // relative to the store's prefix, ends with '/'
    std::unique_ptr<HttpConnection> conn;
    std::string pending;  // received and not yet a whole message
  };
  using Clock = std::chrono::steady_clock;

  // Opens every stream on one member, failing over until the store's timeout; throws
  // cni::Error{kErrTryAgainLater} naming the last error.
  void establish();
  void close_all();
  // Reads what arrived on `s`; true when an event came. Throws HttpError when it broke.
  bool drain(Stream& s);
  // Whether the current member answers a linearizable read within the probe's timeout.
  bool probe();
  bool interrupted();

  EtcdOptions options_;
  TlsFiles tls_;
  std::vector<Stream> streams_;
  size_t current_;
  bool established_ = false;
  Clock::time_point last_news_;
  cni::UniqueFd interrupt_;  // eventfd
};

}  // namespace ipam
