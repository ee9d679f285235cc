#pragma once

// Real etcd members for tests of global-ipam's etcd store: started here on 127.0.0.1 with
// ports the kernel picked and a temporary data directory, stopped (and the directory
// removed) on destruction. Only loopback: client and peer URLs are 127.0.0.1.

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ipam/global/etcd_store.h"
#include "libcni/kernel/netns.h"
#include "test/support/harness.h"

namespace strait::test {

// A port on 127.0.0.1 that was free a moment ago.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  close(fd);
  return ntohs(a.sin_port);
}

struct EtcdTls {
  std::string ca;           // CA that signed the server and client certificates
  std::string server_cert;  // for 127.0.0.1
  std::string server_key;
  std::string client_cert;  // what the tests' clients present
  std::string client_key;
};

// Where the members listen: by default 127.0.0.1 of the test's own netns; for tests whose
// clients run in namespaces of their own (the overlay tests' nodes), an address of a netns the
// test made, which the members then run in.
struct EtcdPlace {
  std::string netns;  // a /run/netns name; "" for the caller's
  std::string host = "127.0.0.1";
};

class EtcdCluster {
 public:
  explicit EtcdCluster(int members = 1, const EtcdTls* tls = nullptr, EtcdPlace place = {})
      : dir_("strait-etcd"),
        tls_(tls ? std::optional<EtcdTls>(*tls) : std::nullopt),
        place_(std::move(place)) {
    std::string scheme = tls_ ? "https" : "http";
    for (int i = 0; i < members; ++i) {
      Member m;
      m.name = "m" + std::to_string(i);
      m.client = scheme + "://" + place_.host + ":" + std::to_string(free_port());
      m.peer = "http://" + place_.host + ":" + std::to_string(free_port());
      members_.push_back(m);
    }
    for (const auto& m : members_)
      initial_ += (initial_.empty() ? "" : ",") + m.name + "=" + m.peer;
    for (size_t i = 0; i < members_.size(); ++i) start(i);
    wait_ready();
  }
  ~EtcdCluster() {
    for (size_t i = 0; i < members_.size(); ++i) stop(i);
  }
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (const auto& m : members_) out.push_back(m.client);
    return out;
  }
  std::string endpoint(size_t i) const { return members_[i].client; }
  const std::string& dir() const { return dir_.path(); }

  // Starts member i (again: its data directory is kept, so the cluster state survives).
  void start(size_t i) {
    Member& m = members_[i];
    std::vector<std::string> args = {"/usr/bin/etcd",
                                     "--name=" + m.name,
                                     "--data-dir=" + dir_.path() + "/" + m.name,
                                     "--listen-client-urls=" + m.client,
                                     "--advertise-client-urls=" + m.client,
                                     "--listen-peer-urls=" + m.peer,
                                     "--initial-advertise-peer-urls=" + m.peer,
                                     "--initial-cluster=" + initial_,
                                     "--initial-cluster-token=strait-test",
                                     "--initial-cluster-state=new",
                                     "--log-level=warn"};
    if (tls_) {
      args.push_back("--cert-file=" + tls_->server_cert);
      args.push_back("--key-file=" + tls_->server_key);
      args.push_back("--trusted-ca-file=" + tls_->ca);
      args.push_back("--client-cert-auth=true");
    }
    std::string log = dir_.path() + "/" + m.name + ".log";
    std::optional<cni::Netns> ns;
    if (!place_.netns.empty()) ns = cni::Netns::open("/run/netns/" + place_.netns);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      if (ns && setns(ns->fd(), CLONE_NEWNET) != 0) _exit(126);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      int null = open("/dev/null", O_RDONLY);
      if (fd < 0 || null < 0) _exit(127);
      dup2(null, 0);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      // A clean environment: no proxies, no ETCD_* settings from the caller.
      char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
      char* envp[] = {path, nullptr};
      execve(argv[0], argv.data(), envp);
      _exit(127);
    }
    m.pid = pid;
  }
  // SIGKILL (a crash) or SIGTERM (a clean stop) of member i.
  void stop(size_t i, int sig = SIGTERM) {
    Member& m = members_[i];
    if (m.pid <= 0) return;
    // SIGKILL takes a frozen member as it is; any other signal needs it running.
    if (sig != SIGKILL) kill(m.pid, SIGCONT);
    kill(m.pid, sig);
    waitpid(m.pid, nullptr, 0);
    m.pid = -1;
  }
  void freeze(size_t i) { kill(members_[i].pid, SIGSTOP); }
  // Member i's process (-1 when stopped): the bench reads its CPU time.
  pid_t pid(size_t i) const { return members_[i].pid; }
  void thaw(size_t i) { kill(members_[i].pid, SIGCONT); }

  // A store on these endpoints (client certificate files for a TLS cluster).
  ipam::EtcdOptions options(const std::string& prefix = "/strait-test",
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    ipam::EtcdOptions o;
    o.endpoints = endpoints();
    o.prefix = prefix;
    o.timeout = timeout;
    return o;
  }

  // Until a linearizable read (which needs a leader) succeeds on every member.
  void wait_ready(std::chrono::seconds limit = std::chrono::seconds(30)) const {
    std::optional<cni::Netns> ns;
    if (!place_.netns.empty()) ns = cni::Netns::open("/run/netns/" + place_.netns);
    std::optional<cni::NetnsGuard> in_ns;
    if (ns) in_ns.emplace(*ns);
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (size_t i = 0; i < members_.size(); ++i) {
      if (members_[i].pid <= 0) continue;
      for (;;) {
        try {
          ipam::EtcdOptions o = options();
          o.endpoints = {members_[i].client};
          o.timeout = std::chrono::milliseconds(500);
          if (tls_) {
            o.ca_file = tls_->ca;
            o.cert_file = tls_->client_cert;
            o.key_file = tls_->client_key;
          }
          ipam::EtcdStore(o).get("ready");
          break;
        } catch (const std::exception& e) {
          if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("etcd " + members_[i].client +
                                     " did not become ready: " + e.what());
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
  }

 private:
  struct Member {
    std::string name;
    std::string client;
    std::string peer;
    pid_t pid = -1;
  };
  TempDir dir_;
  std::optional<EtcdTls> tls_;
  EtcdPlace place_;
  std::vector<Member> members_;
  std::string initial_;
};

}  // namespace strait::test
