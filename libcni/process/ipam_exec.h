#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "libcni/process/invoke.h"
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

// Puts an IPAM result's addresses, routes and DNS into a plugin's `result`, every address on
// interface `iface_index` (containerd finds the pod IP only through ips[].interface ->
// {CNI_IFNAME, sandbox}). A result without addresses is Error{kErrInternal} naming `type`.
void add_ipam_result(Result& result, const Result& ipam, std::string_view type, int iface_index);

// Whether IPAM plugin `type` can run before the interface exists: true for the IPAMs that only
// allocate from a store (host-local, static, global-ipam, whereabouts). dhcp talks on the
// interface and an unknown plugin may look at it, so those run after it is created.
bool ipam_independent_of_link(std::string_view type);

// An IPAM ADD started ahead: when the IPAM type is independent of the link, start() spawns
// the delegate and returns at once, and it runs while the plugin creates the interface (about
// 1-2 ms of an ADD overlap); otherwise nothing happens until result(). No thread is involved:
// the child runs on its own and result() collects it. It is spawned in the caller's netns, so
// call start() in the runtime's netns. Construct it before the Rollback, register the undo
// (wait(), then ipam_del: SPEC, a delegate whose ADD failed gets a DEL too), then call
// start(): the undo then always finds a constructed object, whether or not start() threw, and
// the DEL never overtakes the ADD.
class EarlyIpamAdd {
 public:
  explicit EarlyIpamAdd(const CmdArgs& args) : args_(args) {}
  ~EarlyIpamAdd();
  EarlyIpamAdd(const EarlyIpamAdd&) = delete;
  EarlyIpamAdd& operator=(const EarlyIpamAdd&) = delete;

  // Starts a store-only IPAM's ADD (see ipam_independent_of_link). Throws what starting a
  // delegate throws: Error{kErrInvalidConfig} when ipam.type is not on CNI_PATH,
  // std::system_error "failed to execute ..." when no process can be made (a full pids
  // cgroup); the object stays usable and nothing was started.
  void start();
  // The delegate's result (rethrowing its error), running the ADD now if it was not started.
  // Once only.
  Result result();
  // Waits until a started ADD has finished, keeping its outcome for result(); returns at once
  // when none was started. Never throws.
  void wait() noexcept;

 private:
  const CmdArgs& args_;
  std::optional<StartedPlugin> started_;
  // A started ADD's outcome, once wait() has collected it: its stdout, or what it threw.
  std::optional<std::string> out_;
  std::exception_ptr error_;
};

}  // namespace cni
