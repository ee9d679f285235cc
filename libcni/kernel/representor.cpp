#include "libcni/kernel/representor.h"

#include <charconv>

namespace cni {

namespace {

// Reads the decimal number after `prefix` at the front of `s`, advancing `s` past it.
std::optional<int> take_number(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return std::nullopt;
  s.remove_prefix(prefix.size());
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  s.remove_prefix(static_cast<size_t>(end - s.data()));
  return value;
}

}  // namespace

std::optional<VfPortName> parse_vf_port_name(std::string_view name) {
  VfPortName out;
  if (name.substr(0, 1) == "c") {
    out.controller = take_number(name, "c");
    if (!out.controller) return std::nullopt;
  }
  auto pf = take_number(name, "pf");
  if (!pf) return std::nullopt;
  auto vf = take_number(name, "vf");
  if (!vf || !name.empty()) return std::nullopt;
  out.pf = *pf;
  out.vf = *vf;
  return out;
}

std::map<int, LinkInfo> list_vf_representors(NlSocket& sock, const LinkInfo& pf,
                                             std::optional<int> pf_number) {
  std::map<int, LinkInfo> out;
  if (pf.phys_switch_id.empty()) return out;
  for (LinkInfo& link : list_links(sock)) {
    if (link.index == pf.index || link.phys_switch_id != pf.phys_switch_id) continue;
    auto port = parse_vf_port_name(link.phys_port_name);
    if (!port || (pf_number && port->pf != *pf_number)) continue;
    out.emplace(port->vf, std::move(link));
  }
  return out;
}

}  // namespace cni
