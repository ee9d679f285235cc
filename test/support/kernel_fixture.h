#pragma once

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "test/support/harness.h"

// Helpers for the [kernel] tests of libcni's netlink verbs: every namespace is one the
// test made, and every check is done twice, through libcni and through `ip -j`.
namespace strait::test {

// A TempNetns, an open handle on it and a netlink socket bound to it.
struct KernelNs {
  explicit KernelNs(std::string_view prefix = "k")
      : ns(prefix), handle(cni::Netns::open(ns.path())), sock(cni::NlSocket::in(handle)) {}
  TempNetns ns;
  cni::Netns handle;
  cni::NlSocket sock;

  int fd() const { return handle.fd(); }
  // `ip -j <args>` run inside the namespace, parsed.
  nlohmann::json ip(const std::string& args) const {
    std::string out = ns.exec("ip -j " + args);
    if (out.find_first_not_of(" \n") == std::string::npos) return nlohmann::json::array();
    return nlohmann::json::parse(out);
  }
  // The single entry of `ip -j -d link show dev <name>`.
  nlohmann::json link(const std::string& name) const {
    auto j = ip("-d link show dev " + name);
    return j.at(0);
  }
};

// The inode of the calling thread's network namespace.
inline ino_t thread_netns_inode() {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace strait::test
