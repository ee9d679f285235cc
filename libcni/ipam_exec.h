#pragma once

#include <string>

#include "libcni/result.h"
#include "libcni/skel.h"

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

}  // namespace cni
