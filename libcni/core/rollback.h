#pragma once

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "libcni/core/log.h"

namespace cni {

// The C++ `defer` of a CNI ADD: every side effect registers its undo right after it
// succeeds, and unless commit() is reached the destructor runs the undo steps in reverse
// order, so a failed ADD leaves nothing behind (SPEC: "a failed ADD ... should clean up").
//
//   Rollback rollback(args.log);
//   create_macvlan(...);
//   rollback.add("delete link \"mv1234\"", [&] { delete_link_if_exists(pod, index); });
//   ...
//   rollback.commit();
//
// Undo steps must not depend on state that dies before the Rollback: declare the sockets,
// namespaces and strings they use before it. A failing undo step is logged as a warning and
// the remaining steps still run; the original error is what the caller sees.
class Rollback {
 public:
  explicit Rollback(Logger& log) : log_(log) {}
  ~Rollback() { run(); }
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;

  // `what` names the undo step in the warning when it fails ("release IPAM lease").
  void add(std::string what, std::function<void()> undo) {
    steps_.push_back({std::move(what), std::move(undo)});
  }

  // Keeps every side effect: the destructor does nothing.
  void commit() noexcept { steps_.clear(); }

  // Runs the pending undo steps now, newest first, and forgets them.
  void run() noexcept {
    while (!steps_.empty()) {
      Step step = std::move(steps_.back());
      steps_.pop_back();
      try {
        step.undo();
        log_.debug("rolled back: " + step.what);
      } catch (const std::exception& e) {
        log_.warning("rollback: failed to " + step.what + ": " + e.what());
      } catch (...) {
        log_.warning("rollback: failed to " + step.what + ": unknown error");
      }
    }
  }

  size_t pending() const { return steps_.size(); }

 private:
  struct Step {
    std::string what;
    std::function<void()> undo;
  };
  Logger& log_;
  std::vector<Step> steps_;
};

}  // namespace cni
