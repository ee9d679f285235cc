#include "libcni/protocol/requested_mac.h"

#include "libcni/core/error.h"

namespace cni {

std::optional<MacAddress> parse_unicast_mac(const std::string& text, std::string* why) {
  auto mac = MacAddress::try_parse(text);
  if (!mac) {
    *why = "is not a MAC address (expected aa:bb:cc:dd:ee:ff)";
    return std::nullopt;
  }
  // The kernel refuses both for a macvlan (EADDRNOTAVAIL) and for a VF (EINVAL); say why
  // before anything is changed.
  if (mac->is_multicast()) {
    *why = "is a multicast address (the lowest bit of the first byte is set)";
    return std::nullopt;
  }
  if (mac->is_zero()) {
    *why = "is the zero address";
    return std::nullopt;
  }
  return mac;
}

RequestedMac requested_mac(const Fields& top, const CniArgs& cni_args) {
  RequestedMac r;
  std::string why;
  if (auto text = top.str("mac"); text && !text->empty()) {
    auto mac = parse_unicast_mac(*text, &why);
    if (!mac) top.fail("mac", quote_value(*text) + " " + why);
    r = {mac, MacSource::kConfig};
  }
  if (auto text = cni_args.get("MAC"); text && !text->empty()) {
    auto mac = parse_unicast_mac(*text, &why);
    if (!mac) throw Error(kErrInvalidEnv, "CNI_ARGS MAC " + quote_value(*text) + " " + why);
    r = {mac, MacSource::kCniArgs};
  }
  if (auto rc = top.object("runtimeConfig")) {
    if (auto text = rc->str("mac"); text && !text->empty()) {
      auto mac = parse_unicast_mac(*text, &why);
      if (!mac) rc->fail("mac", quote_value(*text) + " " + why);
      r = {mac, MacSource::kRuntimeConfig};
    }
  }
  return r;
}

}  // namespace cni
