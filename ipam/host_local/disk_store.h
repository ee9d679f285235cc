#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipam/host_local/lease_store.h"
#include "libcni/core/fd.h"

namespace ipam {

// host-local's lease directory, readable and writable by upstream host-local at the same
// time (same files, same lock):
//
//   <dataDir>/<network>/<ip>                 one lease: "<containerID>\r\n<ifname>" (0600,
//                                            created O_EXCL; older leases hold only the ID)
//   <dataDir>/<network>/last_reserved_ip.<N>  the address last reserved in range set N
//   <dataDir>/<network>/lock                  flock()ed for the whole of every operation
//   <dataDir>/<network>/.strait/              our index (upstream ignores it, see below)
//
// The index. Upstream reads every lease file to find an attachment's leases (the duplicate
// check of ADD, DEL, CHECK), so those verbs cost O(leases). We keep one file per attachment
// in .strait/, named after (containerID, ifname) ("k.<id>@<ifname, %-encoded>", or
// "h.<FNV-1a 64 of both>" for names that would be too long or unsafe), holding its
// addresses; a lookup opens one file and checks the leases it names, so ADD and DEL cost the
// same at 10 or 10000 leases.
//
// Staying correct next to upstream, which writes leases without updating the index: under
// the lock, after our own writes, we set the lease directory's mtime to a moment two seconds
// in the past and record (st_dev, st_ino, st_mtim) in .strait/stamp. Any later creation or
// removal of a lease by anyone sets the mtime to the present, so on entry a stamp that
// differs from the directory means "changed behind our back", and one scan rebuilds the
// index. (Recording the mtime as the kernel left it would not do: timestamps come from a
// coarse clock, and a foreign write in the same tick would leave the mtime unchanged.) Our
// own mutations change the directory first and the index second, and the stamp is written
// only when both are done, so a crash at any point also leads to a rebuild. A lease the
// index names is read before it is trusted, and any inconsistency rebuilds as well. Two
// attachments whose hashed names collide disable the index (every operation scans, like
// upstream) until one of them goes away.
//
// Upstream's DEL walks subdirectories too and removes every file whose content, trimmed,
// equals "<id>\r\n<ifname>" or "<id>"; our index and stamp files start with
// "strait host-local" and contain spaces and no "\r", which no container ID or lease does,
// and their names never parse as IP addresses, so upstream neither deletes nor reports them.
class DiskStore : public LeaseStore {
 public:
  // Opens <data_dir>/<network> and locks it. With `create`, missing directories are made
  // (mode 0700); without, a missing network directory returns nullptr (nothing is leased).
  // The network name must match the spec's name pattern (it becomes a path component):
  // anything else throws cni::Error{kErrInvalidConfig}. OS faults throw std::system_error
  // naming the path.
  static std::unique_ptr<DiskStore> open(const std::string& data_dir, const std::string& network,
                                         bool create);
  ~DiskStore() override;
  DiskStore(const DiskStore&) = delete;
  DiskStore& operator=(const DiskStore&) = delete;

  bool reserve(const cni::IpAddress& ip, const LeaseOwner& owner, size_t range_set) override;
  std::optional<cni::IpAddress> last_reserved(size_t range_set) override;
  void release(const cni::IpAddress& ip) override;
  std::vector<Lease> find(const std::string& container_id, const std::string& ifname) override;
  std::vector<Lease> list() override;
  std::vector<cni::IpAddress> addresses() override;

  // Throws std::system_error when no lease could be written: read-only file system, no
  // free inode or block (STATUS).
  void check_writable() const;
  const std::string& path() const { return path_; }
  // Whether this instance had to rebuild the index (tests, debug logs).
  bool rebuilt_index() const { return rebuilt_; }

  // The index entry name of an owner (exposed for tests).
  static std::string entry_name(const LeaseOwner& owner);

 private:
  DiskStore(std::string path, cni::UniqueFd dir);
  void lock();
  void open_index();
  bool stamp_matches() const;
  void write_stamp() noexcept;
  void rebuild();
  std::vector<Lease> scan() const;
  // Calls fn(ip, name) for every file named like a lease (an address as Go prints it).
  template <class Fn>
  void for_each_lease_name(Fn fn) const;
  // The addresses the index lists for `owner`; nullopt when the entry is unreadable or
  // belongs to another owner (the caller rebuilds).
  std::optional<std::vector<cni::IpAddress>> read_entry(const LeaseOwner& owner) const;
  std::vector<cni::IpAddress>& entry(const LeaseOwner& owner);
  void write_entry(const LeaseOwner& owner, const std::vector<cni::IpAddress>& ips);
  std::optional<LeaseOwner> read_lease(const std::string& name) const;

  std::string path_;
  cni::UniqueFd dir_;
  cni::UniqueFd lock_;
  cni::UniqueFd index_;
  // Index entries read or written by this instance; all of them after a rebuild (full_).
  std::map<std::pair<std::string, std::string>, std::vector<cni::IpAddress>> cache_;
  bool full_ = false;
  bool degraded_ = false;  // hashed names collide: no index until they no longer do
  bool rebuilt_ = false;
  bool dirty_ = false;      // the directory or the index changed
  bool consistent_ = true;  // false while a mutation is half done
};

}  // namespace ipam
