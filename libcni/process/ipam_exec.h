#pragma once

#include <future>
#include <string>
#include <string_view>

#include "libcni/protocol/result.h"
#include "libcni/protocol/skel.h"

namespace cni {

// IPAM delegation (SPEC "Delegated plugins"): the plugin named by `ipam.type` is found on
// CNI_PATH and run with the caller's whole environment (only CNI_COMMAND set to the verb) and
// the caller's original stdin, byte for byte. A delegate's error JSON is rethrown with its own
// code, msg and details, so the runtime sees the IPAM failure unchanged.

// `ipam.type` of the config; a missing or empty one throws Error{kErrInvalidConfig} naming
// "ipam.type".
std::string ipam_type(const NetConf& conf);

// ADD: returns the delegate's result (any supported version) parsed as "ipam result".
Result ipam_add(const CmdArgs& args);
// DEL, CHECK, STATUS, GC: forwarded with the same stdin (GC's valid attachments included).
void ipam_del(const CmdArgs& args);
void ipam_check(const CmdArgs& args);
void ipam_status(const CmdArgs& args);
void ipam_gc(const CmdArgs& args);

// Whether IPAM plugin `type` can run before the interface exists: true for the IPAMs that only
// allocate from a store (host-local, static, global-ipam, whereabouts). dhcp talks on the
// interface and an unknown plugin may look at it, so those run after it is created.
bool ipam_independent_of_link(std::string_view type);

// An IPAM ADD started ahead: when the IPAM type is independent of the link, start() runs the
// exec on a second thread while the plugin creates the interface (about 1-3 ms of an ADD
// overlap); otherwise nothing happens until result(). The thread inherits the caller's netns,
// so call start() in the runtime's netns. Construct it before the Rollback, register the
// undo (wait(), then ipam_del: SPEC, a delegate whose ADD failed gets a DEL too), then call
// start(): the undo then always finds a constructed object, whether or not start() threw, and
// the DEL never overtakes the ADD.
class EarlyIpamAdd {
 public:
  explicit EarlyIpamAdd(const CmdArgs& args) : args_(args) {}
  ~EarlyIpamAdd();
  EarlyIpamAdd(const EarlyIpamAdd&) = delete;
  EarlyIpamAdd& operator=(const EarlyIpamAdd&) = delete;

  // Starts a store-only IPAM's ADD (see ipam_independent_of_link). Throws std::system_error
  // "failed to start a thread for the IPAM ADD: ..." when no thread can be made (a full pids
  // cgroup); the object stays usable.
  void start();
  // The delegate's result (rethrowing its error), running the ADD now if it was not started.
  // Once only.
  Result result();
  // Waits until a started ADD has finished; returns at once when none was started. Never
  // throws.
  void wait() noexcept;

 private:
  const CmdArgs& args_;
  std::future<Result> started_;
};

}  // namespace cni
