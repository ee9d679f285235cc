#include "plugins/sriov/sriov_config.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "libcni/core/error.h"
#include "libcni/kernel/sysfs.h"
#include "libcni/protocol/fields.h"

namespace sriov {

namespace {

// "on" / "off", sriov-cni's spellings for spoofchk and trust.
std::optional<bool> on_off(const cni::Fields& f, const char* key) {
  auto text = f.str(key);
  if (!text || text->empty()) return std::nullopt;
  if (*text == "on") return true;
  if (*text == "off") return false;
  f.fail(key, cni::quote_value(*text) + " is not \"on\" or \"off\"");
}

// A path key of ours: absolute, so that a relative one cannot depend on the runtime's
// working directory.
std::string path_key(const cni::Fields& f, const char* key, const char* def) {
  std::string p = f.str_or(key, def);
  if (p.empty() || p[0] != '/') f.fail(key, cni::quote_value(p) + " must be an absolute path");
  return p;
}

// The IPAM block: absent or {} is L2 only.
void read_ipam(const cni::NetConf& conf, bool* l2_only, std::string* type) {
  cni::Fields ipam(conf.ipam, "ipam");
  *l2_only = ipam.object_json().empty();
  if (!*l2_only) *type = ipam.required_str("type");
}

}  // namespace

cni::VfSettings SriovConfig::vf_settings() const {
  cni::VfSettings s;
  s.vlan = vlan;
  s.mac = mac.mac;
  s.rate = rate;
  s.spoofchk = spoofchk;
  s.trust = trust;
  s.link_state = link_state;
  return s;
}

SriovConfig parse_config(const cni::NetConf& conf, const cni::CniArgs& cni_args) {
  cni::Fields f(conf.raw, "");
  SriovConfig c;

  // deviceID: the capability multus fills from the device plugin wins; multus also writes
  // the same address into the config as deviceID and pciBusID.
  std::optional<std::string> id;
  if (auto rc = f.object("runtimeConfig")) {
    if (auto v = rc->str("deviceID"); v && !v->empty()) {
      id = v;
      c.device_id_key = "runtimeConfig.deviceID";
    }
  }
  for (const char* key : {"deviceID", "pciBusID"}) {
    if (id) break;
    if (auto v = f.str(key); v && !v->empty()) {
      id = v;
      c.device_id_key = key;
    }
  }
  if (!id) {
    f.fail("deviceID",
           "is required: the VF's PCI address, e.g. \"0000:af:06.0\" (multus passes the device "
           "plugin's choice as runtimeConfig.deviceID)");
  }
  if (!cni::is_pci_address(*id)) {
    throw cni::Error(cni::kErrInvalidConfig,
                     "invalid config: \"" + c.device_id_key + "\": " + cni::quote_value(*id) +
                         " is not a PCI address (domain:bus:device.function, e.g. 0000:af:06.0)");
  }
  c.device_id = *id;
  std::transform(c.device_id.begin(), c.device_id.end(), c.device_id.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });

  // vlan, vlanQoS, vlanProto (sriov-cni LoadConf): QoS and protocol need a VLAN, a non-zero
  // QoS or 802.1ad a non-zero one.
  auto vlan = f.integer("vlan", 0, 4094);
  auto qos = f.integer("vlanQoS", 0, 7);
  auto proto_text = f.str("vlanProto");
  if (!vlan) {
    if (qos) f.fail("vlanQoS", std::to_string(*qos) + " needs \"vlan\"");
    if (proto_text) f.fail("vlanProto", cni::quote_value(*proto_text) + " needs \"vlan\"");
  } else {
    cni::VfVlan v;
    v.vlan = static_cast<int>(*vlan);
    v.qos = static_cast<int>(qos.value_or(0));
    if (v.qos != 0 && v.vlan == 0) {
      f.fail("vlanQoS", std::to_string(v.qos) + " needs a non-zero \"vlan\" (it is 0)");
    }
    std::string proto = proto_text.value_or("802.1q");
    std::transform(proto.begin(), proto.end(), proto.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (proto == "802.1q") {
      v.proto = cni::kVlanProto8021Q;
    } else if (proto == "802.1ad") {
      v.proto = cni::kVlanProto8021AD;
      if (v.vlan == 0) {
        f.fail("vlanProto", cni::quote_value(*proto_text) + " needs a non-zero \"vlan\" (it is 0)");
      }
    } else {
      f.fail("vlanProto", cni::quote_value(*proto_text) + " is not \"802.1Q\" or \"802.1ad\"");
    }
    c.vlan = v;
  }

  c.mac = cni::requested_mac(f, cni_args);
  c.spoofchk = on_off(f, "spoofchk");
  c.trust = on_off(f, "trust");
  if (auto state = f.str("link_state"); state && !state->empty()) {
    c.link_state = cni::parse_vf_link_state(*state);
    if (!c.link_state) {
      f.fail("link_state",
             cni::quote_value(*state) + " is not \"auto\", \"enable\" or \"disable\"");
    }
  }

  constexpr uint64_t kMaxRate = std::numeric_limits<uint32_t>::max();
  auto min_rate = f.uinteger("min_tx_rate", kMaxRate);
  auto max_rate = f.uinteger("max_tx_rate", kMaxRate);
  if (min_rate || max_rate) {
    // 0 is "no limit" for both; a floor above a set ceiling is a contradiction.
    if (min_rate && max_rate && *max_rate != 0 && *min_rate > *max_rate) {
      f.fail("min_tx_rate", std::to_string(*min_rate) +
                                " is larger than \"max_tx_rate\": " + std::to_string(*max_rate));
    }
    c.rate = cni::VfRate{static_cast<uint32_t>(min_rate.value_or(0)),
                         static_cast<uint32_t>(max_rate.value_or(0))};
  }

  read_ipam(conf, &c.l2_only, &c.ipam_type);
  c.data_dir = path_key(f, "dataDir", kDefaultDataDir);
  c.sysfs_root = path_key(f, "sysfsRoot", kDefaultSysfsRoot);
  return c;
}

LenientConfig parse_lenient_config(const cni::NetConf& conf) {
  cni::Fields f(conf.raw, "");
  LenientConfig c;
  read_ipam(conf, &c.l2_only, &c.ipam_type);
  c.data_dir = path_key(f, "dataDir", kDefaultDataDir);
  c.sysfs_root = path_key(f, "sysfsRoot", kDefaultSysfsRoot);
  return c;
}

}  // namespace sriov
