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
//   <root>/.locks/<xx>   the lock of the keys whose stable hash falls on it (256 files, 00 to
//                        ff, made once each and never removed): flock()ed, exclusively, around
//                        each compare-and-swap
//   <root>/.tmp/         where new versions are written before they are renamed into place
//
// No global lock: a write locks its own key's lock file only (shared with the keys that hash
// to the same one: a key lock is held for one compare-and-swap, and never with another), and
// readers take no lock at all (a
// rename replaces a file atomically, so a reader sees the old or the new version, never a
// mix). Crash-safe: a new version is written to a temporary file and renamed into place (a
// new key), or exchanged with the old version (renameat2(RENAME_EXCHANGE), an existing key on
// a local file system: ext4 flushes a file renamed over another to the disk inside the
// rename, and does not for an exchange), whose inode, now at the temporary name, is then
// unlinked. A killed process leaves the old or the new version, plus at worst a stray file in
// // .tmp/ (the new version or, after an exchange, the old) or an empty directory. A writer
// keeps its temporary file flock()ed until it has renamed it, so the next store opened on the
// directory removes exactly the files whose writer died, and never a slow writer's (an old
// version exchanged out is unlocked: whoever comes first, its writer or a sweep, removes it).
//
// Durability: no fsync at all on a local file system (ext4, xfs, btrfs, f2fs, tmpfs,
// overlayfs); one per write, of the new version's data before its rename, on any other (NFS
// and whatever else other hosts may read), and of directories only when the store makes its
// own (its root and .tmp/), not those of keys.
//  - A killed process loses nothing either way: the page cache survives it (the SIGKILL
//    sweep's case), and a reader never sees a renamed record without its data.
//  - A power loss or kernel crash of the node loses the writes its kernel had not yet put on
//    the disk (ext4 commits every 5 s): a key comes back in an earlier version, absent, or
//    as an empty file, which reads as absent (we never write one). On a local file system
//    only this node's kernel reads the store, so every pod whose allocation, release or
//    intent is lost died with the node: what comes back is a stale allocation (GC releases
//    it: no live attachment holds it), an intent its block does not confirm (readers ignore
//    it, DEL removes it), a freed address (nobody holds it), an index entry without its block
//    (the next allocation completes the claim) or a node record to write again (the overlay's
//    next ADD does), the states the allocator already recovers from after a crash between
//    its two writes. No address of a live pod can be handed out twice, since no pod outlived
//    the write that was lost. A record longer than a page may in principle come back cut
//    short on some file systems: it is then reported as malformed, naming the file (never
//    read as free), and may be removed, since no pod of the node survived the same crash.
//  - On NFS or any other file system the store syncs each write before its rename: other
//    hosts read the record as soon as it is renamed (an NFS client writes the data back only
//    at close or fsync, so without it they could read an empty record), and pods on other
//    nodes outlive a crash of the server, so a block that came back in an earlier version
//    there could hand out a live pod's address again.
// host-local (ours and upstream's) writes its leases without fsync on every file system;
// this store did two fsyncs per ADD before, whose journal commits cost 0.3-10 ms each on a
// shared disk (docs/benchmarks.md, global-ipam).
//
// Revisions: max(previous + 1, CLOCK_REALTIME in ns). A key deleted and created again gets a
// revision later than any it had, unless the clock went back by more than the time between
// the two, so a compare-and-swap prepared before the delete fails.
//
// Lock files are shared and kept: a key written for the first time creates no lock file,
// directory or inode beyond its own record (its directories, and for a new store the lock
// file). Inode creation is what a write costs most on some file systems (ext4 without a
// journal scans past every recently freed inode: docs/benchmarks.md, global-ipam). Earlier
// versions kept one lock file per key, .locks/<key>, removed with the key: what they left
// under .locks/ is unused and may be deleted. A process of such a version and one of this
// version must not write one store at the same time, since they lock different files: on
// one node the node lock (node_lock.h) keeps ADDs and DELs apart anyway; a store shared by
// several nodes is upgraded on all of them together.
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
  // The lock file that `key`'s writes flock (see above); for tests and operators.
  std::string lock_file(const std::string& key) const;
  static constexpr uint64_t kLockStripes = 256;

 private:
  // A new file in .tmp/, locked (see sweep_tmp), named <tag><pid>-<instance>-<counter>.
  struct TmpFile {
    std::string path;
    cni::UniqueFd fd;
  };
  TmpFile create_tmp(const std::string& tag);
  // Renames `tmp` over the key's file (`replace`: a version of it exists, exchanged with it
  // on a local file system); false when the temporary file is gone.
  bool rename_into(const TmpFile& tmp, const std::string& key, const std::string& path,
                   bool replace);
  std::string path_of(const std::string& key) const;
  cni::UniqueFd lock(const std::string& key);
  std::optional<KvEntry> read(const std::string& key, const std::string& path) const;
  void sweep_tmp() const;

  std::string root_;
  std::chrono::milliseconds lock_timeout_;
  uint64_t tmp_tag_;
  std::atomic<uint64_t> tmp_counter_{0};
  bool sync_writes_ = true;  // fsync each new version before its rename (see "Durability")
  std::atomic<bool> exchange_works_{true};  // renameat2(RENAME_EXCHANGE) (see rename_into)
};

// Throws std::invalid_argument unless `key` is a valid store key (see KvStore).
void validate_store_key(const std::string& key);

}  // namespace ipam
