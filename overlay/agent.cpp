#include "overlay/agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "libcni/core/error.h"
#include "libcni/core/fd.h"
#include "libcni/core/read_file.h"
#include "libcni/kernel/netlink.h"
#include "libcni/protocol/version.h"
#include "overlay/cluster.h"
#include "overlay/nat.h"
#include "overlay/node_side.h"

namespace overlay {

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{1000};
constexpr std::chrono::milliseconds kMaxBackoff{30000};

// SIGTERM and SIGINT as readable events: blocked for the process, read from a signalfd, so
// a stop is seen whether it comes during a pass or during a wait (and no handler touches
// global state).
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set_, &old_) != 0) {
      throw std::system_error(errno, std::system_category(), "failed to block SIGTERM");
    }
    fd_ = cni::UniqueFd(signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_) throw std::system_error(errno, std::system_category(), "failed to make a signalfd");
  }
  ~StopSignals() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Waits up to `timeout` for a stop signal; true when one came (it is consumed).
  bool wait(std::chrono::milliseconds timeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(timeout.count(), INT32_MAX)));
    if (rc <= 0) return false;
    signalfd_siginfo info{};
    return read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info);
  }
  bool pending() { return wait(std::chrono::milliseconds(0)); }

 private:
  sigset_t set_{};
  sigset_t old_{};
  cni::UniqueFd fd_;
};

enum class Wake { kStop, kChange, kTimer, kFailed };

// How often a wait on the store watch looks for a stop signal (the watch has no descriptor to
// poll beside the signalfd).
constexpr std::chrono::milliseconds kStopCheck{100};

std::string event_name(ipam::KvWatch::Event e) {
  return e == ipam::KvWatch::Event::kResync ? "watch re-established, re-reading the store"
                                            : "the block table or the node records changed";
}

// Waits on `watch` up to `timeout` for a change, then until the store has been quiet for
// kDebounce (at most kMaxDebounce), logging what came; kFailed when the watch threw (logged:
// the store is unreachable; the watch re-establishes itself on a later wait()).
Wake wait_for_change(ipam::KvWatch& watch, StopSignals& stop, std::chrono::milliseconds timeout,
                     cni::Logger& log) {
  using Clock = std::chrono::steady_clock;
  using ipam::KvWatch;
  const auto now = [] { return Clock::now(); };
  auto deadline = now() + timeout;
  std::optional<Clock::time_point> first;  // of the burst
  int events = 0;
  for (;;) {
    if (stop.pending()) return Wake::kStop;
    const auto t = now();
    if (first && t >= *first + kMaxDebounce) break;
    if (!first && t >= deadline) return Wake::kTimer;
    auto slice = first ? kDebounce
                       : std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::min(deadline - t, Clock::duration(kStopCheck)));
    KvWatch::Event e;
    try {
      e = watch.wait(std::max(slice, std::chrono::milliseconds(0)));
    } catch (const cni::Error& ex) {
      log.error("watch failed: " + ex.msg() + "; the kernel keeps its routes");
      return Wake::kFailed;
    } catch (const std::exception& ex) {
      log.error(std::string("watch failed: ") + ex.what() + "; the kernel keeps its routes");
      return Wake::kFailed;
    }
    if (e == KvWatch::Event::kChanged || e == KvWatch::Event::kResync) {
      if (!first || e == KvWatch::Event::kResync) log.info(event_name(e));
      if (!first) first = now();
      ++events;
    } else if (e == KvWatch::Event::kInterrupted) {
      return Wake::kStop;
    } else if (first) {
      break;  // quiet for kDebounce
    }
  }
  if (events > 1) log.debug(std::to_string(events) + " wake-ups coalesced into one pass");
  return Wake::kChange;
}

}  // namespace

std::string describe(const ReconcileReport& r) {
  const Writes& w = r.writes;
  std::string s = std::to_string(r.peers) + " peers, " + std::to_string(r.routes) + " routes, " +
                  std::to_string(w.total()) + " writes (" + std::to_string(w.node) + " node, " +
                  std::to_string(w.routes_added) + " added, " + std::to_string(w.routes_replaced) +
                  " replaced, " + std::to_string(w.routes_deleted) + " deleted, " +
                  std::to_string(w.peers) + " peer, " + std::to_string(w.nat) + " nat)";
  return s;
}

Agent::Agent(const OverlayConfig& cfg, Overhead overhead, TunnelFactory make_tunnel,
             ipam::KvStore& store, cni::Logger& log)
    : cfg_(cfg),
      overhead_(overhead),
      make_tunnel_(std::move(make_tunnel)),
      store_(store),
      log_(log) {}

ReconcileReport Agent::pass() {
  cni::NlSocket sock;
  const Underlay underlay = resolve_underlay(sock, cfg_, overhead_);
  std::unique_ptr<Tunnel> tunnel = make_tunnel_(underlay);

  std::vector<std::string> skipped;
  const Cluster cluster = reader_.read(store_, cfg_.ipam.pools, &skipped);
  for (const auto& s : skipped) log_.warning("skipping " + s);
  std::optional<ipam::records::NodeRecord> self;
  for (const auto& n : cluster.nodes) {
    if (n.name == cfg_.ipam.node_name) self = n;
  }

  Writes node_writes;
  NodeSide side(cfg_, underlay, *tunnel, store_, log_);
  const NodeState state = side.ensure(sock, node_writes, &self);
  ReconcileReport report =
      reconcile(sock, *tunnel, state.device.index, cfg_.ipam.node_name, cluster, log_);
  report.writes.node += node_writes.node;
  report.writes.routes_added += node_writes.routes_added;
  report.writes.nat = reconcile_nat(cfg_.ipam.pools, log_);
  return report;
}

int Agent::run(const AgentOptions& options) {
  StopSignals stop;
  std::chrono::milliseconds backoff{0};
  const auto fail = [&backoff] {
    backoff = backoff.count() == 0 ? kFirstBackoff : std::min(backoff * 2, kMaxBackoff);
  };
  std::string last_unreachable;
  std::unique_ptr<ipam::KvWatch> watch;
  for (;;) {
    // The watch is made before the pass that reads the store: nothing written after the read
    // goes unseen.
    if (options.watch && !options.once && !watch) {
      try {
        watch = store_.watch(cluster_prefixes(cfg_.ipam.pools));
        log_.info("watching " + store_.describe());
      } catch (const cni::Error& e) {
        log_.error("cannot watch the store: " + e.msg() + "; retrying");
      } catch (const std::exception& e) {
        log_.error(std::string("cannot watch the store: ") + e.what() + "; retrying");
      }
    }
    bool ok = false;
    try {
      const ReconcileReport report = pass();
      ok = true;
      std::string unreachable;
      for (const auto& u : report.unreachable) unreachable += "; " + u;
      if (unreachable != last_unreachable && !unreachable.empty()) {
        log_.warning("remote nodes without what the tunnel needs" + unreachable);
      }
      last_unreachable = unreachable;
      if (report.writes.total() > 0 || options.once) {
        log_.info("sync: " + describe(report));
      } else {
        log_.debug("sync: " + describe(report));
      }
    } catch (const cni::Error& e) {
      log_.error("sync failed: " + e.msg() + "; the kernel keeps its routes");
    } catch (const std::exception& e) {
      log_.error(std::string("sync failed: ") + e.what() + "; the kernel keeps its routes");
    }
    if (options.once) return ok ? 0 : 1;
    if (!ok || (options.watch && !watch)) {
      fail();
      if (stop.wait(backoff)) break;
      continue;
    }
    if (!watch) {
      backoff = std::chrono::milliseconds(0);
      if (stop.wait(options.interval)) break;
      continue;
    }
    const Wake w = wait_for_change(*watch, stop, options.interval, log_);
    if (w == Wake::kStop) break;
    if (w == Wake::kFailed) {
      fail();
      if (stop.wait(backoff)) break;
    } else {
      backoff = std::chrono::milliseconds(0);
    }
  }
  log_.info("stopping on a signal");
  return 0;
}

}  // namespace overlay

namespace overlay {

cni::NetConf load_plugin_config(const std::string& path, const std::string& type) {
  const auto text = cni::read_whole_file(path);
  if (!text) throw std::runtime_error("cannot read \"" + path + "\": " + std::strerror(errno));
  const cni::NetConfList list = cni::parse_conflist(*text, cni::supported_versions());
  for (const auto& p : list.plugins) {
    if (!p.is_object() || p.value("type", "") != type) continue;
    nlohmann::json conf = p;
    conf["name"] = list.name;
    conf["cniVersion"] = list.cni_version;
    return cni::netconf_from_json(conf, cni::supported_versions());
  }
  throw std::runtime_error("\"" + path + "\" has no plugin of type \"" + type + "\"");
}

}  // namespace overlay
