#include "ipam/address_request.h"

#include <netinet/in.h>

#include <algorithm>

#include "libcni/core/error.h"
#include "libcni/protocol/fields.h"

namespace ipam {

namespace {

using cni::IpAddress;

IpAddress canonical(const IpAddress& a) {
  static const cni::IpNet kMapped{IpAddress::parse("::ffff:0.0.0.0"), 96};
  if (a.is_v6() && kMapped.contains(a)) return IpAddress::from_bytes(AF_INET, a.data() + 12);
  return a;
}

void add(std::vector<AddressRequest>& out, const IpAddress& ip, std::string source) {
  bool dup = std::any_of(out.begin(), out.end(), [&](const auto& r) { return r.ip == ip; });
  if (!dup) out.push_back({ip, std::move(source)});
}

void add_list(std::vector<AddressRequest>& out, const cni::Fields& f, const std::string& key,
              const std::vector<std::string>& list) {
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item = key + "[" + std::to_string(i) + "]";
    auto ip = parse_requested_address(list[i]);
    if (!ip) f.fail(item, cni::quote_value(list[i]) + " is not an IP address");
    add(out, *ip, f.key_path(item));
  }
}

}  // namespace

std::optional<IpAddress> parse_requested_address(std::string_view text) {
  if (auto a = IpAddress::try_parse(text)) return canonical(*a);
  if (auto n = cni::IpNet::try_parse(text)) return canonical(n->ip);
  return std::nullopt;
}

std::vector<AddressRequest> parse_address_requests(const cni::NetConf& conf, const cni::Env& env) {
  std::vector<AddressRequest> out;
  if (auto arg = env.args.get("IP"); arg && !arg->empty()) {
    std::string_view rest = *arg;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view one = rest.substr(0, comma);
      auto ip = parse_requested_address(one);
      if (!ip) {
        throw cni::Error(cni::kErrInvalidEnv, "invalid CNI_ARGS: IP=" + std::string(*arg) + ": \"" +
                                                  std::string(one) + "\" is not an IP address");
      }
      add(out, *ip, "CNI_ARGS IP");
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  cni::Fields args(conf.args, "args");
  if (auto cni_args = args.object("cni")) {
    if (auto ips = cni_args->str_list("ips")) add_list(out, *cni_args, "ips", *ips);
  }
  cni::Fields runtime(conf.runtime_config, "runtimeConfig");
  if (auto ips = runtime.str_list("ips")) add_list(out, runtime, "ips", *ips);
  return out;
}

}  // namespace ipam
