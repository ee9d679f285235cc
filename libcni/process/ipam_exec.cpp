#include "libcni/process/ipam_exec.h"

#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/fields.h"

namespace cni {

namespace {

std::string run_delegate(const CmdArgs& args, std::string_view command) {
  std::string type = ipam_type(args.conf);
  args.log.debug("delegating " + std::string(command) + " to IPAM plugin \"" + type + "\"");
  return invoke_plugin(args.exec, type, args.env.path, command, args.environ, args.stdin_data);
}

}  // namespace

std::string ipam_type(const NetConf& conf) {
  // A null `ipam` reads as an empty object, so the message names "ipam.type" either way.
  return Fields(conf.ipam, "ipam").required_str("type");
}

Result ipam_add(const CmdArgs& args) {
  std::string out = run_delegate(args, "ADD");
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(kErrDecode, "failed to decode the result of IPAM plugin \"" + ipam_type(args.conf) +
                                "\": " + quote_value(out));
  }
  return parse_result(j, "ipam result");
}

void ipam_del(const CmdArgs& args) { run_delegate(args, "DEL"); }
void ipam_check(const CmdArgs& args) { run_delegate(args, "CHECK"); }
void ipam_status(const CmdArgs& args) { run_delegate(args, "STATUS"); }
void ipam_gc(const CmdArgs& args) { run_delegate(args, "GC"); }

bool ipam_independent_of_link(std::string_view type) {
  return type == "host-local" || type == "static" || type == "global-ipam" || type == "whereabouts";
}

void EarlyIpamAdd::start() {
  if (started_.valid() || !ipam_independent_of_link(ipam_type(args_.conf))) return;
  const CmdArgs& args = args_;
  try {
    started_ = std::async(std::launch::async, [&args] { return ipam_add(args); });
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "failed to start a thread for the IPAM ADD");
  }
}

EarlyIpamAdd::~EarlyIpamAdd() { wait(); }

Result EarlyIpamAdd::result() {
  if (started_.valid()) return started_.get();
  return ipam_add(args_);
}

void EarlyIpamAdd::wait() noexcept {
  if (started_.valid()) started_.wait();
}

}  // namespace cni
