#include "ipam/global/etcd_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

#include "libcni/core/base64.h"
#include "libcni/core/error.h"

namespace ipam {

using nlohmann::json;

namespace {

// How long a silent member has to answer the probe (a linearizable read).
constexpr std::chrono::milliseconds kProbeTimeout{3000};

}  // namespace

EtcdWatch::EtcdWatch(const EtcdOptions& options, std::vector<std::string> prefixes, size_t first)
    : options_(options),
      tls_{options.ca_file, options.cert_file, options.key_file},
      current_(first % options.endpoints.size()),
      interrupt_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!interrupt_) throw std::system_error(errno, std::generic_category(), "eventfd");
  for (auto& p : prefixes) {
    if (p.empty() || p.back() != '/') {
      throw std::invalid_argument("etcd watch: prefix \"" + p + "\" must end with '/'");
    }
    streams_.push_back(Stream{std::move(p), nullptr, ""});
  }
  establish();
}

void EtcdWatch::interrupt() {
  uint64_t one = 1;
  ssize_t ignored = write(interrupt_.get(), &one, sizeof one);  // async-signal-safe
  (void)ignored;
}

bool EtcdWatch::interrupted() {
  uint64_t n = 0;
  return read(interrupt_.get(), &n, sizeof n) == sizeof n;
}

void EtcdWatch::close_all() {
  for (auto& s : streams_) {
    s.conn.reset();
    s.pending.clear();
  }
  established_ = false;
}

void EtcdWatch::establish() {
  auto deadline = Clock::now() + options_.timeout;
  std::string last_error;
  size_t tried = 0;
  while (Clock::now() < deadline) {
    const std::string& ep = options_.endpoints[current_];
    try {
      for (auto& s : streams_) {
        s.conn = std::make_unique<HttpConnection>(HttpUrl::parse(ep), tls_);
        std::string full = options_.prefix + "/" + s.prefix;
        json create = {{"create_request",
                        {{"key", cni::base64_encode(full)},
                         {"range_end", cni::base64_encode(EtcdStore::range_end(full))}}}};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        std::string error_body;
        int status =
            s.conn->open_stream("/v3/watch", create.dump(), deadline,
                                std::min(left, std::chrono::milliseconds(1000)), &error_body);
        if (status != 200) {
          throw HttpError(ep + ": HTTP " + std::to_string(status) + " " + error_body, false);
        }
        // Established once etcd says so: from then on every write is reported.
        bool created = false;
        while (!created) {
          size_t nl;
          while ((nl = s.pending.find('\n')) == std::string::npos) {
            if (!s.conn->read_stream(s.pending, deadline)) {
              throw HttpError(ep + ": no answer to the watch request", true);
            }
          }
          json m = json::parse(s.pending.substr(0, nl), nullptr, false);
          s.pending.erase(0, nl + 1);
          if (m.is_discarded() || !m.contains("result")) {
            throw HttpError(ep + ": unexpected watch answer " + m.dump(), false);
          }
          created = m["result"].value("created", false);
        }
      }
      established_ = true;
      last_news_ = Clock::now();
      return;
    } catch (const HttpError& e) {
      if (!e.timed_out() || last_error.empty()) last_error = e.what();
    } catch (const std::invalid_argument& e) {
      last_error = e.what();
    }
    close_all();
    EtcdStore::fail_over(current_, tried, options_.endpoints.size(), deadline);
  }
  throw cni::Error(cni::kErrTryAgainLater,
                   "etcd watch on " + options_.prefix + ": no endpoint answered for " +
                       std::to_string(options_.timeout.count()) +
                       " ms (last error: " + (last_error.empty() ? "none" : last_error) + ")");
}

bool EtcdWatch::drain(Stream& s) {
  bool changed = false;
  // Whatever has arrived, without waiting.
  while (s.conn->read_stream(s.pending, Clock::now())) {
  }
  size_t nl;
  while ((nl = s.pending.find('\n')) != std::string::npos) {
    json m = json::parse(s.pending.substr(0, nl), nullptr, false);
    s.pending.erase(0, nl + 1);
    if (m.is_discarded()) throw HttpError("etcd watch: malformed message", false);
    const json& r = m.value("result", json::object());
    if (m.contains("error") || r.value("canceled", false)) {
      throw HttpError("etcd watch canceled: " + m.dump(), false);
    }
    if (r.contains("events") && !r["events"].empty()) changed = true;
  }
  return changed;
}

bool EtcdWatch::probe() {
  try {
    HttpConnection c(HttpUrl::parse(options_.endpoints[current_]), tls_);
    std::string k = cni::base64_encode(options_.prefix + "/");
    json range = {{"key", k},
                  {"range_end", cni::base64_encode(EtcdStore::range_end(options_.prefix + "/"))},
                  {"count_only", true},
                  {"limit", 1}};
    auto r = c.post("/v3/kv/range", range.dump(), Clock::now() + kProbeTimeout,
                    std::chrono::milliseconds(1000));
    return r.status == 200;
  } catch (const HttpError&) {
    return false;
  }
}

KvWatch::Event EtcdWatch::wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  if (interrupted()) return Event::kInterrupted;
  if (!established_) {
    establish();  // throws while no member answers
    return Event::kResync;
  }
  for (;;) {
    bool changed = false;
    bool broken = false;
    std::vector<pollfd> fds;
    for (auto& s : streams_) fds.push_back({s.conn->fd(), POLLIN, 0});
    fds.push_back({interrupt_.get(), POLLIN, 0});
    auto ready = [](const Stream& s) {
      return s.conn->buffered() || s.pending.find('\n') != std::string::npos;
    };
    bool buffered = std::any_of(streams_.begin(), streams_.end(), ready);
    auto probe_at = last_news_ + kProbeAfter;
    auto until = std::min(deadline, probe_at);
    int ms =
        buffered
            ? 0
            : static_cast<int>(std::max<int64_t>(
                  0, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now())
                         .count()));
    int n = poll(fds.data(), fds.size(), ms);
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
    if (fds.back().revents && interrupted()) return Event::kInterrupted;
    for (size_t i = 0; i < streams_.size(); ++i) {
      if (!fds[i].revents && !ready(streams_[i])) continue;
      last_news_ = Clock::now();
      try {
        if (drain(streams_[i])) changed = true;
      } catch (const HttpError&) {
        broken = true;
      }
    }
    if (!broken && !changed && Clock::now() >= probe_at) {
      // Silence: a frozen member or one cut off from the quorum keeps its connections up.
      if (probe()) {
        last_news_ = Clock::now();
      } else {
        broken = true;
      }
    }
    if (broken) {
      close_all();
      current_ = (current_ + 1) % options_.endpoints.size();  // the next member first
      establish();  // throws while no member answers; the next wait() tries again
      return Event::kResync;
    }
    if (changed) return Event::kChanged;
    if (Clock::now() >= deadline) return Event::kTimeout;
  }
}

}  // namespace ipam
