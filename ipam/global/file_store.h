#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ipam/global/store.h"
#include "libcni/core/fd.h"

namespace ipam {

// The embedded KvStore: one file per key under a directory, for one node or for nodes that
// share a file system (NFS with working flock, a shared block device...).
//
//   <root>/<key>         "<revision>\n<value>": the key "blocks/p/10.0.0.32-27" is the file
//                        <root>/blocks/p/10.0.0.32-27
//   <root>/.locks/<key>  the key's lock: flock()ed, exclusively, around each compare-and-swap
//   <root>/.tmp/         where new versions are written before they are renamed into place
//
// No global lock: a write locks its own key only, and readers take no lock at all (a
// rename replaces a file atomically, so a reader sees the old or the new version, never a
// mix). Crash-safe: a new version is written to a temporary file, fsync()ed, and renamed over
// the old one. A crash leaves the old or the new version, plus at worst a stray file in .tmp/
// or an empty directory. A writer keeps its temporary file flock()ed until it has renamed it,
// so the next store opened on the directory removes exactly the files whose writer died, and
// never a slow writer's.
//
// Durability: one fsync per write, of the new version's data before its rename, and none of
// the directory after it (nor of the directories made for a new key: handles/<net>/<id>/).
// A killed process loses nothing either way (the page cache survives it: the SIGKILL sweep's
// case). The fsync is for a power loss and for NFS: without it a rename can reach the disk
// (or the server, where other nodes see it) before the data, leaving an empty or short
// record, which would fail every later ADD until repaired. The directory fsyncs only decide
// whether the last few renames and unlinks survive a power loss, and a power loss kills
// every container of the node with it: a key that comes back in its previous version is an
// allocation or release of a container that is gone, i.e. an unconfirmed intent or a stale
// allocation, which the allocator already treats as after a crash between its two writes
// (DEL and GC release them). On ext4 and xfs the journal commits metadata in order, so the
// next fsync persists every earlier rename anyway; an NFS server commits a rename before it
// answers. Five fsyncs per ADD became two (docs/benchmarks.md).
//
// Revisions: max(previous + 1, CLOCK_REALTIME in ns). A key deleted and created again gets a
// revision later than any it had, unless the clock went back by more than the time between
// the two, so a compare-and-swap prepared before the delete fails.
//
// A deleted key also loses its lock file, unlinked while locked; whoever waited on the old
// lock notices (the path no longer names the inode it locked) and locks the new one.
class FileStore : public KvStore {
 public:
  // Creates `root` (mode 0700, with missing parents) unless it exists, and removes what dead
  // writers left in .tmp/. `lock_timeout` bounds the wait for a key's lock: past it,
  // cni::Error{kErrTryAgainLater} (or, when the lock's directory cannot be made to hold the
  // lock file, the std::system_error of that).
  FileStore(std::string root, std::chrono::milliseconds lock_timeout);

  std::optional<KvEntry> get(const std::string& key) override;
  std::vector<KvEntry> list(const std::string& prefix, bool keys_only = false) override;
  std::optional<int64_t> put_if(const std::string& key, const std::string& value,
                                int64_t expected) override;
  bool erase_if(const std::string& key, int64_t expected) override;
  void ping() override;
  // inotify (file_watch.h).
  std::unique_ptr<KvWatch> watch(const std::vector<std::string>& prefixes) override;
  std::string describe() const override { return "file store " + root_; }

  const std::string& root() const { return root_; }

 private:
  // A new file in .tmp/, locked (see sweep_tmp), named <tag><pid>-<instance>-<counter>.
  struct TmpFile {
    std::string path;
    cni::UniqueFd fd;
  };
  TmpFile create_tmp(const std::string& tag);
  // Renames `tmp` over the key's file; false when the temporary file is gone.
  bool rename_into(const TmpFile& tmp, const std::string& key, const std::string& path);
  std::string path_of(const std::string& key) const;
  cni::UniqueFd lock(const std::string& key);
  std::optional<KvEntry> read(const std::string& key, const std::string& path) const;
  void sweep_tmp() const;

  std::string root_;
  std::chrono::milliseconds lock_timeout_;
  uint64_t tmp_tag_;
  std::atomic<uint64_t> tmp_counter_{0};
};

// Throws std::invalid_argument unless `key` is a valid store key (see KvStore).
void validate_store_key(const std::string& key);

}  // namespace ipam
