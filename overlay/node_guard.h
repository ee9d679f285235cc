#pragma once

#include <chrono>
#include <string>

#include "libcni/core/fd.h"

// Concurrent ADDs on a node share its node state (the tunnel device, the tunnel addresses, the
// node record): the first ADDs on a fresh node must not race each other into an error, and a
// failed ADD that made the node state may undo it only when no other ADD is using it. Two
// flock(2) files per tunnel device under the node lock directory:
//
//   <dir>/<device>.users   every ADD holds it shared for its whole run
//   <dir>/<device>.setup   held exclusively while the node state is checked or made
//
// An ADD that made node state and then fails calls last_user(): it drops its share and tries
// the users lock exclusively without waiting; only when that succeeds (nobody else is in an
// ADD, and new ADDs wait until it is released) does it undo the node state. Locks are
// best effort like global-ipam's: a directory that cannot be used means no locking, logged,
// and then a failed ADD never undoes node state.
namespace overlay {

class NodeGuard {
 public:
  // Takes the users lock shared, waiting at most `timeout`. An empty `dir` locks nothing.
  static NodeGuard enter(const std::string& dir, const std::string& device,
                         std::chrono::milliseconds timeout);

  // Holds the setup lock for the guard's lifetime.
  class Setup {
   public:
    Setup() = default;
    explicit Setup(cni::UniqueFd fd) : fd_(std::move(fd)) {}

   private:
    cni::UniqueFd fd_;
  };
  Setup setup(std::chrono::milliseconds timeout);

  // See above. false when the guard holds no lock or another ADD holds a share.
  bool last_user();

  bool held() const { return static_cast<bool>(users_); }
  const std::string& why_not() const { return why_not_; }

 private:
  std::string dir_;
  std::string device_;
  cni::UniqueFd users_;
  std::string why_not_;
};

}  // namespace overlay
