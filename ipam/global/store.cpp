#include "ipam/global/store.h"

namespace ipam {

std::vector<std::vector<KvEntry>> KvStore::read_batch(const std::vector<Read>& reads) {
  std::vector<std::vector<KvEntry>> out;
  for (const auto& r : reads) {
    if (r.prefix) {
      out.push_back(list(r.key, r.keys_only));
    } else if (auto e = get(r.key)) {
      out.push_back({std::move(*e)});
    } else {
      out.emplace_back();
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> KvStore::put_all_if(const std::vector<Write>& writes) {
  std::vector<int64_t> revisions;
  for (const auto& w : writes) {
    if (w.erase) {
      if (!erase_if(w.key, w.expected)) return std::nullopt;
      revisions.push_back(0);
      continue;
    }
    auto rev = put_if(w.key, w.value, w.expected);
    if (!rev) return std::nullopt;
    revisions.push_back(*rev);
  }
  return revisions;
}

KvStore::Outcome KvStore::put_all_if_or_read(const std::vector<Write>& writes,
                                             const std::vector<Read>& reads) {
  Outcome o;
  o.revisions = put_all_if(writes);
  if (!o.revisions) o.reads = read_batch(reads);
  return o;
}

}  // namespace ipam
