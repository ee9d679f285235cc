#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/kernel/vf.h"
#include "libcni/process/file_lock.h"

// The sriov plugin's state, under `dataDir` (default /var/lib/cni/sriov, sriov-cni's):
//
//   pci/<address>              the VF record: which attachment holds the VF (container ID,
//                              ifname, the netns path and inode of its ADD) and the VF's whole
//                              state before that ADD changed anything. Written (whole,
//                              state_file.h) before the first change, removed after DEL put
//                              everything back.
//   pci/vf_lock/<address>.lock the per-VF flock around every read-change-write of the above
//                              (sriov-cni's lock file)
//   <containerID>-<ifname>     the attachment's index: which VF it holds (sriov-cni's cache
//                              path). Written before the record; only a hint, the record is
//                              the truth: DEL without it finds the record by its owner.
//
// A record names its owner so that a DEL of an attachment that no longer holds the VF never
// touches it (sriov-cni #219), and the netns so that an ADD can tell a live holder from one
// whose pod is gone without a DEL (a stale record, whose VF is then restored and reused).
// sriov-cni's own records (the netns path as plain text) are read as held by an unknown owner.
namespace sriov {

// What the VF looked like before ADD: what DEL puts back.
struct SavedVf {
  cni::VfInfo vf{};  // the PF's view: admin MAC, vlan/qos/proto, rates, spoofchk, trust, state
  // The VF netdev on the host (none in DPDK mode).
  std::string host_name{};
  std::string mac{};
  int mtu = 0;
  bool up = false;
};

struct VfRecord {
  std::string device_id;
  // The owner; both empty for a record sriov-cni wrote.
  std::string container_id;
  std::string ifname;
  std::string netns;         // CNI_NETNS of the owner's ADD
  uint64_t netns_inode = 0;  // 0 when unknown (sriov-cni's records)
  std::string pf;            // the PF netdev
  int vf_index = 0;
  bool dpdk = false;        // no netdev: bound to vfio-pci / uio
  std::string temp_name{};  // the VF netdev's name while it moves (host -> pod -> host)
  SavedVf saved{};
  cni::VfSettings applied{};  // what the ADD changes through the PF (DEL restores just those)

  bool owned_by(const std::string& cid, const std::string& ifn) const {
    return !container_id.empty() && container_id == cid && ifname == ifn;
  }
  std::string owner() const;  // `container "abc", ifname "net1"` or `an unknown owner`
};

// A VF's PF-side state as the record keeps it (also the tests' fake PF's format).
nlohmann::json vf_info_to_json(const cni::VfInfo& v);
cni::VfInfo vf_info_from_json(const nlohmann::json& j);  // throws nlohmann::json::exception

nlohmann::json record_to_json(const VfRecord& r);
// Throws std::runtime_error naming what is malformed.
VfRecord record_from_json(const nlohmann::json& j);

// The attachment's index file.
struct IndexEntry {
  std::string container_id;
  std::string ifname;
  std::string device_id;
};

class StateDir {
 public:
  explicit StateDir(std::string data_dir) : dir_(std::move(data_dir)) {}
  const std::string& path() const { return dir_; }

  std::string record_path(const std::string& device_id) const;
  std::string index_path(const std::string& container_id, const std::string& ifname) const;
  std::string lock_path(const std::string& device_id) const;

  // The per-VF lock (code 11 after `timeout`).
  cni::FileLock lock(const std::string& device_id, std::chrono::milliseconds timeout) const;

  // nullopt when there is none; a file that is not a record throws std::runtime_error.
  std::optional<VfRecord> load_record(const std::string& device_id) const;
  void store_record(const VfRecord& r) const;
  void remove_record(const std::string& device_id) const;
  // The addresses of every record (file names under pci/ that are PCI addresses).
  std::vector<std::string> record_addresses() const;

  std::optional<IndexEntry> load_index(const std::string& container_id,
                                       const std::string& ifname) const;
  void store_index(const IndexEntry& e) const;
  void remove_index(const std::string& container_id, const std::string& ifname) const;
  // Every index entry (for GC); unreadable ones are skipped.
  std::vector<IndexEntry> index_entries() const;

 private:
  std::string dir_;
};

}  // namespace sriov
