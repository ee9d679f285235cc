#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "ipam/global/store.h"
#include "libcni/core/fd.h"

namespace ipam {

// KvStore::watch of the file store: inotify on every directory under the watched prefixes
// (<root>/blocks/, <root>/nodes/ ...), added as directories appear. A write lands as a rename
// into the key's directory (IN_MOVED_TO), a delete as an unlink (IN_DELETE); a prefix whose
// directory does not exist yet is watched from its nearest existing parent. A new directory
// is watched, then read: a key that landed in it before the watch counts as a change. An
// overflowing inotify queue (IN_Q_OVERFLOW) means events were lost: the directories are
// watched anew and wait() says kResync.
class FileWatch : public KvWatch {
 public:
  FileWatch(std::string root, std::vector<std::string> prefixes);
  Event wait(std::chrono::milliseconds timeout) override;
  void interrupt() override;

 private:
  // Watches `rel` (a directory below the root, "" for the root) and, recursively, its
  // subdirectories under a watched prefix; true when it found a file (a key) in them.
  bool add_tree(const std::string& rel);
  // Watches every prefix (or its nearest existing parent); true when keys were found.
  bool add_all();
  // Whether `rel` lies under a watched prefix, or is a parent of one (to watch for it).
  bool under_prefix(const std::string& rel) const;
  bool above_prefix(const std::string& rel) const;

  std::string root_;
  std::vector<std::string> prefixes_;  // without the trailing '/'
  cni::UniqueFd inotify_;
  cni::UniqueFd interrupt_;          // eventfd
  std::map<int, std::string> dirs_;  // watch descriptor -> directory relative to the root
};

}  // namespace ipam
