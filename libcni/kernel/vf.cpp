#include "libcni/kernel/vf.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace cni {

namespace {

struct LinkStateName {
  VfLinkState state;
  std::string_view name;
};
constexpr LinkStateName kLinkStates[] = {
    {VfLinkState::kAuto, "auto"},
    {VfLinkState::kEnable, "enable"},
    {VfLinkState::kDisable, "disable"},
};

}  // namespace

std::optional<VfLinkState> parse_vf_link_state(std::string_view name) {
  for (const auto& s : kLinkStates) {
    if (s.name == name) return s.state;
  }
  return std::nullopt;
}

std::string_view to_string(VfLinkState state) {
  for (const auto& s : kLinkStates) {
    if (s.state == state) return s.name;
  }
  return "unknown";
}

std::string vlan_proto_name(uint16_t proto) {
  if (proto == kVlanProto8021Q) return "802.1Q";
  if (proto == kVlanProto8021AD) return "802.1ad";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) s += kHex[(proto >> shift) & 0xf];
  return s;
}

// ---- parsing ----

namespace {

[[noreturn]] void parse_error(const std::string& what) {
  throw NetlinkError("failed to parse the VF list: " + what, -NLE_PARSE_ERR);
}

// The fixed-size struct an attribute carries, nullopt when it is absent; too short an
// attribute is a parse error (the kernel only ever grows these structs at the end).
template <class T>
std::optional<T> read_struct(const nlattr* attr, const char* name) {
  if (!attr) return std::nullopt;
  if (nla_len(attr) < static_cast<int>(sizeof(T))) {
    parse_error(std::string(name) + " is " + std::to_string(nla_len(attr)) + " bytes");
  }
  T value;
  std::memcpy(&value, nla_data(attr), sizeof value);
  return value;
}

// ifla_vf_spoofchk.setting and ifla_vf_trust.setting: 0, 1, or the kernel's preset -1 when
// the driver reports nothing.
std::optional<bool> flag_setting(uint32_t setting) {
  if (setting == 0) return false;
  if (setting == 1) return true;
  return std::nullopt;
}

VfInfo parse_vf(nlattr* entry) {
  nlattr* tb[IFLA_VF_MAX + 1] = {};
  if (int rc = nla_parse_nested(tb, IFLA_VF_MAX, entry, nullptr); rc < 0) {
    throw NetlinkError("failed to parse the VF list", rc);
  }
  VfInfo vf;
  // Every VF of a reply has IFLA_VF_MAC, which names it; a request of vf_requests carries just
  // the one setting, whose own struct names the VF.
  std::optional<uint32_t> index;
  auto seen = [&](uint32_t i) {
    if (index && *index != i)
      parse_error("an entry names VFs " + std::to_string(*index) + " and " + std::to_string(i));
    index = i;
  };
  if (auto mac = read_struct<ifla_vf_mac>(tb[IFLA_VF_MAC], "IFLA_VF_MAC")) {
    seen(mac->vf);
    vf.mac = MacAddress::from_bytes(mac->mac);
  }
  if (auto vlan = read_struct<ifla_vf_vlan>(tb[IFLA_VF_VLAN], "IFLA_VF_VLAN")) {
    seen(vlan->vf);
    vf.vlan = static_cast<int>(vlan->vlan);
    vf.qos = static_cast<int>(vlan->qos);
    vf.vlan_proto = kVlanProto8021Q;  // what the old attribute means
  }
  // The list form carries the protocol (802.1ad); the kernel sends one entry per VF.
  if (nlattr* list = tb[IFLA_VF_VLAN_LIST]) {
    nlattr* info = nla_find(static_cast<nlattr*>(nla_data(list)), nla_len(list), IFLA_VF_VLAN_INFO);
    if (auto v = read_struct<ifla_vf_vlan_info>(info, "IFLA_VF_VLAN_INFO")) {
      seen(v->vf);
      vf.vlan = static_cast<int>(v->vlan);
      vf.qos = static_cast<int>(v->qos);
      vf.vlan_proto = ntohs(v->vlan_proto);
    }
  }
  if (auto rate = read_struct<ifla_vf_rate>(tb[IFLA_VF_RATE], "IFLA_VF_RATE")) {
    seen(rate->vf);
    vf.min_tx_rate = rate->min_tx_rate;
    vf.max_tx_rate = rate->max_tx_rate;
  } else if (auto tx = read_struct<ifla_vf_tx_rate>(tb[IFLA_VF_TX_RATE], "IFLA_VF_TX_RATE")) {
    seen(tx->vf);
    vf.max_tx_rate = tx->rate;
  }
  if (auto s = read_struct<ifla_vf_spoofchk>(tb[IFLA_VF_SPOOFCHK], "IFLA_VF_SPOOFCHK")) {
    seen(s->vf);
    vf.spoofchk = flag_setting(s->setting);
  }
  if (auto t = read_struct<ifla_vf_trust>(tb[IFLA_VF_TRUST], "IFLA_VF_TRUST")) {
    seen(t->vf);
    vf.trust = flag_setting(t->setting);
  }
  if (auto l = read_struct<ifla_vf_link_state>(tb[IFLA_VF_LINK_STATE], "IFLA_VF_LINK_STATE")) {
    seen(l->vf);
    if (l->link_state > IFLA_VF_LINK_STATE_DISABLE) {
      parse_error("VF " + std::to_string(l->vf) + " has link state " +
                  std::to_string(l->link_state));
    }
    vf.link_state = static_cast<VfLinkState>(l->link_state);
  }
  if (!index) parse_error("an entry names no VF");
  vf.index = static_cast<int>(*index);
  return vf;
}

}  // namespace

std::vector<VfInfo> parse_vf_list(const nlattr* list) {
  std::vector<VfInfo> vfs;
  if (!list) return vfs;
  nlattr* attr;
  int rem;
  nla_for_each_nested(attr, const_cast<nlattr*>(list), rem) {
    if (nla_type(attr) != IFLA_VF_INFO) continue;
    vfs.push_back(parse_vf(attr));
  }
  std::sort(vfs.begin(), vfs.end(),
            [](const VfInfo& a, const VfInfo& b) { return a.index < b.index; });
  return vfs;
}

std::vector<VfInfo> parse_link_vf_list(const nlmsghdr* hdr) {
  auto* h = const_cast<nlmsghdr*>(hdr);
  nlattr* tb[IFLA_MAX + 1] = {};
  if (int rc = nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr); rc < 0) {
    throw NetlinkError("failed to parse a link message", rc);
  }
  return parse_vf_list(tb[IFLA_VFINFO_LIST]);
}

// ---- reading ----

std::vector<VfInfo> list_vfs(NlSocket& sock, const LinkRef& pf) {
  NlMessage msg = link_message(RTM_GETLINK, 0, pf);
  // Without RTEXT_FILTER_VF the kernel leaves the VF list out; their statistics are not
  // wanted (and make the reply about 200 bytes longer per VF).
  msg.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
  std::vector<VfInfo> vfs;
  sock.request(msg, "failed to read the VFs of PF " + pf.str(), [&](const nlmsghdr* hdr) {
    if (hdr->nlmsg_type == RTM_NEWLINK) vfs = parse_link_vf_list(hdr);
  });
  return vfs;
}

std::optional<VfInfo> find_vf(NlSocket& sock, const LinkRef& pf, int vf) {
  for (const VfInfo& info : list_vfs(sock, pf)) {
    if (info.index == vf) return info;
  }
  return std::nullopt;
}

// ---- writing ----

namespace {

// An RTM_SETLINK of the PF with one VF attribute inside IFLA_VFINFO_LIST / IFLA_VF_INFO.
template <class T>
VfRequest vf_request(const LinkRef& pf, int attr, const T& value, std::string what) {
  VfRequest r{link_message(RTM_SETLINK, 0, pf), std::move(what)};
  r.msg.nest(IFLA_VFINFO_LIST,
             [&] { r.msg.nest(IFLA_VF_INFO, [&] { r.msg.put(attr, &value, sizeof value); }); });
  return r;
}

std::string on_off(bool b) { return b ? "on" : "off"; }

}  // namespace

std::vector<VfRequest> vf_requests(const LinkRef& pf, int vf, const VfSettings& settings) {
  const auto index = static_cast<uint32_t>(vf);
  const std::string of = " of VF " + std::to_string(vf) + " of PF " + pf.str();
  std::vector<VfRequest> out;
  if (settings.vlan) {
    // The list form, which carries the protocol (IFLA_VF_VLAN is 802.1Q only).
    const VfVlan& v = *settings.vlan;
    VfRequest r{link_message(RTM_SETLINK, 0, pf), "failed to set vlan " + std::to_string(v.vlan) +
                                                      " qos " + std::to_string(v.qos) + " proto " +
                                                      vlan_proto_name(v.proto) + of};
    ifla_vf_vlan_info info{};
    info.vf = index;
    info.vlan = static_cast<uint32_t>(v.vlan);
    info.qos = static_cast<uint32_t>(v.qos);
    info.vlan_proto = htons(v.proto);
    r.msg.nest(IFLA_VFINFO_LIST, [&] {
      r.msg.nest(IFLA_VF_INFO, [&] {
        r.msg.nest(IFLA_VF_VLAN_LIST, [&] { r.msg.put(IFLA_VF_VLAN_INFO, &info, sizeof info); });
      });
    });
    out.push_back(std::move(r));
  }
  if (settings.mac) {
    ifla_vf_mac mac{};
    mac.vf = index;
    std::memcpy(mac.mac, settings.mac->data(), 6);
    out.push_back(
        vf_request(pf, IFLA_VF_MAC, mac, "failed to set MAC " + settings.mac->str() + of));
  }
  if (settings.rate) {
    ifla_vf_rate rate{};
    rate.vf = index;
    rate.min_tx_rate = settings.rate->min_tx_rate;
    rate.max_tx_rate = settings.rate->max_tx_rate;
    out.push_back(vf_request(pf, IFLA_VF_RATE, rate,
                             "failed to set min_tx_rate " + std::to_string(rate.min_tx_rate) +
                                 " Mbps, max_tx_rate " + std::to_string(rate.max_tx_rate) +
                                 " Mbps" + of));
  }
  if (settings.spoofchk) {
    ifla_vf_spoofchk s{};
    s.vf = index;
    s.setting = *settings.spoofchk ? 1 : 0;
    out.push_back(vf_request(pf, IFLA_VF_SPOOFCHK, s,
                             "failed to set spoofchk " + on_off(*settings.spoofchk) + of));
  }
  if (settings.trust) {
    ifla_vf_trust t{};
    t.vf = index;
    t.setting = *settings.trust ? 1 : 0;
    out.push_back(
        vf_request(pf, IFLA_VF_TRUST, t, "failed to set trust " + on_off(*settings.trust) + of));
  }
  if (settings.link_state) {
    ifla_vf_link_state l{};
    l.vf = index;
    l.link_state = static_cast<uint32_t>(*settings.link_state);
    out.push_back(vf_request(
        pf, IFLA_VF_LINK_STATE, l,
        "failed to set link state " + std::string(to_string(*settings.link_state)) + of));
  }
  return out;
}

void set_vf(NlSocket& sock, const LinkRef& pf, int vf, const VfSettings& settings) {
  for (VfRequest& r : vf_requests(pf, vf, settings)) sock.request(r.msg, r.what);
}

}  // namespace cni
