#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "libcni/protocol/env.h"

namespace global_ipam {

// The operator's side of global-ipam (like `calicoctl ipam`), in the same executable: main()
// runs this when it has arguments and the CNI protocol when it has none (runtimes never pass
// any). `args` excludes the program name. Returns the exit status: 0, 1 on errors, and for
// `check` 1 when it found problems.
//
//   global-ipam [store options] [--json] show [--blocks] [--node N]
//   global-ipam [store options] [--json] nodes
//   global-ipam [store options] [--json] check [--valid FILE]
//   global-ipam [store options] [--json] release --handle NETWORK/CONTAINERID/IFNAME
//   global-ipam [store options] [--json] gc --valid FILE [--node N] [--network NET] [--dry-run]
//   global-ipam [store options] [--json] gc --live-nodes FILE | --dead-without-record
//                                           [--grace SECONDS] [--dry-run]
//   global-ipam [store options] set-node NAME [--address IP] [--attr KEY=VALUE]...
//
// Store options: --config FILE (a .conf/.conflist or the ipam object alone: its store and
// pools), or --store-path DIR, or --etcd-endpoints URL[,URL] with --etcd-prefix, --ca-file,
// --cert-file, --key-file, --timeout-ms. Default: the file store /var/lib/cni/global-ipam.
int cli_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
             std::ostream& err);

}  // namespace global_ipam
