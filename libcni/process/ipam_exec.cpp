#include "libcni/process/ipam_exec.h"

#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/process/invoke.h"
#include "libcni/protocol/fields.h"

namespace cni {

namespace {

StartedPlugin start_delegate(const CmdArgs& args, std::string_view command) {
  std::string type = ipam_type(args.conf);
  args.log.debug("delegating " + std::string(command) + " to IPAM plugin \"" + type + "\"");
  return start_plugin(args.exec, type, args.env.path, command, args.environ, args.stdin_data);
}

std::string run_delegate(const CmdArgs& args, std::string_view command) {
  return start_delegate(args, command).finish();
}

Result parse_ipam_add(const CmdArgs& args, const std::string& out) {
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(kErrDecode, "failed to decode the result of IPAM plugin \"" + ipam_type(args.conf) +
                                "\": " + quote_value(out));
  }
  return parse_result(j, "ipam result");
}

}  // namespace

std::string ipam_type(const NetConf& conf) {
  // A null `ipam` reads as an empty object, so the message names "ipam.type" either way.
  return Fields(conf.ipam, "ipam").required_str("type");
}

Result ipam_add(const CmdArgs& args) { return parse_ipam_add(args, run_delegate(args, "ADD")); }

void add_ipam_result(Result& result, const Result& ipam, std::string_view type, int iface_index) {
  if (ipam.ips.empty()) {
    throw Error(kErrInternal, "IPAM plugin \"" + std::string(type) + "\" returned no IP addresses");
  }
  result.ips = ipam.ips;
  for (auto& ip : result.ips) ip.interface = iface_index;
  result.routes = ipam.routes;
  result.dns = ipam.dns;
}

void ipam_del(const CmdArgs& args) { run_delegate(args, "DEL"); }
void ipam_check(const CmdArgs& args) { run_delegate(args, "CHECK"); }
void ipam_status(const CmdArgs& args) { run_delegate(args, "STATUS"); }
void ipam_gc(const CmdArgs& args) { run_delegate(args, "GC"); }

bool ipam_independent_of_link(std::string_view type) {
  return type == "host-local" || type == "static" || type == "global-ipam" || type == "whereabouts";
}

void EarlyIpamAdd::start() {
  if (started_ || out_ || error_ || !ipam_independent_of_link(ipam_type(args_.conf))) return;
  started_.emplace(start_delegate(args_, "ADD"));
}

EarlyIpamAdd::~EarlyIpamAdd() { wait(); }

Result EarlyIpamAdd::result() {
  if (!started_ && !out_ && !error_) return ipam_add(args_);
  wait();
  if (error_) std::rethrow_exception(error_);
  return parse_ipam_add(args_, *out_);
}

void EarlyIpamAdd::wait() noexcept {
  if (!started_) return;
  try {
    out_ = started_->finish();
  } catch (...) {
    error_ = std::current_exception();
  }
  started_.reset();
}

}  // namespace cni
