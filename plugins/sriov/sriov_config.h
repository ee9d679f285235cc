#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "libcni/kernel/vf.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/requested_mac.h"

// The sriov plugin's keys, as k8snetworkplumbingwg/sriov-cni's (pkg/types, pkg/config), plus
// two of Strait's own: `dataDir` and `sysfsRoot`. plugins/sriov/README.md lists them all.
namespace sriov {

// sriov-cni's DefaultCNIDir.
inline constexpr char kDefaultDataDir[] = "/var/lib/cni/sriov";
inline constexpr char kDefaultSysfsRoot[] = "/sys";

struct SriovConfig {
  // The VF's PCI address ("0000:af:06.0"): runtimeConfig.deviceID > deviceID > pciBusID
  // (multus injects the device plugin's pick as all three), validated, lowercase.
  std::string device_id;
  std::string device_id_key;  // where it came from: "runtimeConfig.deviceID", ...
  // vlan/vlanQoS/vlanProto, when `vlan` is given (sriov-cni applies the VLAN only then).
  std::optional<cni::VfVlan> vlan;
  cni::RequestedMac mac;  // runtimeConfig.mac > CNI_ARGS MAC= > mac
  std::optional<bool> spoofchk;
  std::optional<bool> trust;
  std::optional<cni::VfLinkState> link_state;
  // min_tx_rate / max_tx_rate (Mbps, 0: no limit); set when either is given, the other 0.
  std::optional<cni::VfRate> rate;
  // `ipam` absent or {}: L2 only (sriov-cni's IPAM is optional). Else ipam.type.
  bool l2_only = true;
  std::string ipam_type;
  std::string data_dir = kDefaultDataDir;
  std::string sysfs_root = kDefaultSysfsRoot;

  // What ADD applies to the VF through the PF, in set_vf's order.
  cni::VfSettings vf_settings() const;
};

// Parses and validates everything that needs no kernel or sysfs. Config faults throw
// cni::Error{kErrInvalidConfig} naming the key and value (`"vlan": 4095 is out of range
// [0, 4094]`, `"vlanQoS": 3 needs "vlan"`, `"min_tx_rate": 500 is larger than "max_tx_rate":
// 100`); a malformed CNI_ARGS MAC is kErrInvalidEnv naming CNI_ARGS.
SriovConfig parse_config(const cni::NetConf& conf, const cni::CniArgs& cni_args);

// What DEL and GC need, leniently (they must work when other keys are broken or changed
// since ADD): the state directory, the sysfs root and the IPAM choice.
struct LenientConfig {
  bool l2_only = true;
  std::string ipam_type;
  std::string data_dir = kDefaultDataDir;
  std::string sysfs_root = kDefaultSysfsRoot;
};
LenientConfig parse_lenient_config(const cni::NetConf& conf);

}  // namespace sriov
