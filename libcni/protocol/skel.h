#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "libcni/core/log.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/result.h"

namespace cni {

// Everything one verb needs, parsed and validated before the verb runs.
struct CmdArgs {
  Env env;
  NetConf conf;
  std::string stdin_data;  // the raw config, forwarded verbatim to IPAM delegates
  const EnvMap& environ;   // the whole environment, forwarded to delegates
  Logger& log;
  ExecRunner& exec;  // used for IPAM delegation
};

// The verb table a plugin hands to skel. A verb left empty answers with
// Error{kErrUnsupportedField}-free "not implemented" (code 4 for an unknown command).
struct Plugin {
  std::string name;                        // "macvlan"
  std::string about;                       // the first line of --help: what it is
  std::vector<std::string> versions = {};  // empty = supported_versions()
  std::set<std::string> cni_args;          // CNI_ARGS keys accepted besides the common ones
  std::function<Result(const CmdArgs&)> add;
  std::function<void(const CmdArgs&)> del;
  std::function<void(const CmdArgs&)> check;
  std::function<void(const CmdArgs&)> status;
  // PARSE (Strait's, not the spec's: no runtime sends it): parses and validates the config the
  // way STATUS does and touches nothing (no netlink, no store, no file). It lets a test and an
  // operator check an example config on any machine; it answers nothing on success.
  std::function<void(const CmdArgs&)> parse;
  // The valid attachments are nullopt when the config carried neither GC key.
  std::function<void(const CmdArgs&, const std::optional<std::vector<Attachment>>&)> gc;
};

struct Io {
  const EnvMap& env;
  std::string_view stdin_data;
  std::ostream& out;
  std::ostream& err;
  ExecRunner& exec;
};

// Dispatches one invocation: validates env and config, runs the verb, prints the result in
// the config's cniVersion. The single place where exceptions become the error JSON
// {"cniVersion","code","msg","details"} on `out`. Returns the process exit code.
int skel_run(const Plugin& plugin, const Io& io);

// The command line of an executable beside its CNI side (vxlan sync, global-ipam's operator
// verbs): the arguments after the program name, the environment, stdout, stderr; returns the
// exit status. Its own --help lists its subcommands.
using Cli = std::function<int(const std::vector<std::string>& args, const EnvMap& env,
                              std::ostream& out, std::ostream& err)>;

// What a person at a terminal gets, the same in every executable: `--version` (-V) prints
// "<name> <build_version()>" on `out`; `--help` (-h) prints help_text() and then the
// subcommands' help (cli with "--help"); no arguments and no CNI_COMMAND prints help_text()
// on `err` (stdout is the runtime's); other arguments go to `cli` (or are an error, exit 2,
// without one). Returns nullopt for a runtime's invocation (CNI_COMMAND set, no arguments).
std::optional<int> run_by_hand(const Plugin& plugin, const std::vector<std::string>& args,
                               const EnvMap& env, const Cli& cli, std::ostream& out,
                               std::ostream& err);

// What the plugin is, its version, how a runtime runs it, where its README is.
std::string help_text(const Plugin& plugin, bool has_subcommands);

// main() of an executable: run_by_hand, else reads stdin (read_stdin), builds the EnvMap from envp,
// runs skel_run with std::cout/std::cerr and a SpawnRunner that kills a delegate after
// delegate_timeout(env) (libcni/process/invoke.h). A stdin that cannot be read, a stdin too
// large or a bad STRAIT_DELEGATE_TIMEOUT is an error, except for VERSION.
int skel_main(const Plugin& plugin, int argc, char** argv, char** envp, const Cli& cli = {});
// A runtime's invocation only, as if run without arguments: for the test fixtures' plugins
// (test/fixtures), which no person runs by hand. Every shipped executable uses the form above
// (the packaging tests fail for one that does not answer --version).
int skel_main(const Plugin& plugin, char** envp);

// Larger configs are refused with kErrDecode instead of being buffered.
inline constexpr size_t kMaxStdin = 4u << 20;

// All of `fd` (a plugin's stdin). Throws Error{kErrIo} "failed to read stdin: ..." when a read
// fails and Error{kErrDecode} when more than kMaxStdin bytes come (it stops reading there).
// VERSION may come with no stdin at all: reading an empty pipe or /dev/null gives "".
std::string read_stdin(int fd);

}  // namespace cni
