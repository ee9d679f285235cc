#include "plugins/global-ipam/consistency_check.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/nodes.h"
#include "ipam/global/records.h"
#include "plugins/global-ipam/snapshot.h"
#include "plugins/global-ipam/table.h"

namespace global_ipam::cli {

using ipam::Block;
using ipam::records::Handle;
using ipam::records::HandleRecord;
using nlohmann::json;
namespace records = ipam::records;

int check(ipam::KvStore& store, std::vector<ipam::PoolConfig> pools,
          const std::optional<std::vector<ValidAttachment>>& valid, bool as_json,
          std::ostream& out) {
  Snapshot st(store, std::move(pools));
  std::vector<std::string> malformed = st.malformed_keys();
  std::map<std::string, HandleRecord> handles;  // by handle id
  for (const auto& e : store.list(records::handles_prefix())) {
    auto h = records::parse_handle_key(e.key);
    if (!h) {
      malformed.push_back(e.key);
      continue;
    }
    handles[h->id()] = HandleRecord::from_json(json::parse(e.value));
  }
  std::set<std::string> node_records;
  for (const auto& n : ipam::nodes::list(store)) node_records.insert(n.name);
  std::vector<records::AffinityKey> index;
  std::set<std::string> index_keys;
  for (const auto& e : store.list(records::affinity_prefix(), true)) {
    auto k = records::parse_affinity_key(e.key);
    if (!k) {
      malformed.push_back(e.key);
      continue;
    }
    index.push_back(*k);
    index_keys.insert(e.key);
  }

  json problems = json::array();
  Table t({"PROBLEM", "WHAT", "DETAIL"});
  auto problem = [&](const std::string& kind, const std::string& what, const std::string& detail,
                     json extra) {
    extra["kind"] = kind;
    extra["what"] = what;
    extra["detail"] = detail;
    problems.push_back(extra);
    t.add({kind, what, detail});
  };
  for (const auto& key : malformed) {
    problem("malformed-key", key, "not a key of its folder (see ipam/global/records.h)",
            {{"key", key}});
  }
  std::map<std::string, std::set<std::pair<std::string, uint64_t>>> confirmed;  // handle -> ip,seq
  size_t allocations = 0;
  for (const auto& b : st.blocks()) {
    const Block& blk = b.block;
    if (blk.affinity.empty()) {
      problem("block-without-owner", blk.cidr.str(), "pool " + blk.pool + ": no affinity",
              {{"block", blk.cidr.str()}, {"pool", blk.pool}});
    } else {
      if (!index_keys.count(records::affinity_key(blk.affinity, blk.pool, blk.cidr))) {
        problem("unindexed-block", blk.cidr.str(),
                "owned by " + blk.affinity + " but missing from its affinity index",
                {{"block", blk.cidr.str()}, {"pool", blk.pool}, {"node", blk.affinity}});
      }
      if (!node_records.count(blk.affinity)) {
        problem("block-owner-unknown", blk.cidr.str(),
                "owned by " + blk.affinity + ", which has no node record",
                {{"block", blk.cidr.str()}, {"pool", blk.pool}, {"node", blk.affinity}});
      }
    }
    for (const auto& [ord, a] : blk.allocations) {
      ++allocations;
      std::string ip = blk.address(ord).str();
      json where = {{"ip", ip},           {"block", blk.cidr.str()}, {"pool", blk.pool},
                    {"handle", a.handle}, {"node", a.node},          {"seq", a.seq}};
      auto h = Handle::parse(a.handle);
      auto rec = handles.find(a.handle);
      bool recorded =
          rec != handles.end() &&
          std::any_of(rec->second.entries.begin(), rec->second.entries.end(),
                      // A copy: clang before 16 cannot capture a structured binding.
                      [&, seq = a.seq](const auto& e) { return e.ip.str() == ip && e.seq == seq; });
      if (recorded) confirmed[a.handle].insert({ip, a.seq});
      if (!recorded) {
        problem("orphan-allocation", ip,
                "held by " + a.handle + " (node " + a.node + ") without a handle record naming it",
                where);
      } else if (valid && h && !is_valid(*valid, *h)) {
        problem("stale-allocation", ip,
                "held by " + a.handle + " (node " + a.node + "), not a valid attachment", where);
      }
    }
  }
  for (const auto& [id, rec] : handles) {
    if (!confirmed.count(id)) {
      problem("empty-handle", id,
              "handle record of node " + rec.node + " names no address a block holds",
              {{"handle", id}, {"node", rec.node}});
    }
  }
  for (const auto& k : index) {
    bool ok = std::any_of(st.blocks().begin(), st.blocks().end(), [&](const auto& b) {
      return b.block.pool == k.pool && b.block.cidr == k.cidr && b.block.affinity == k.node;
    });
    if (!ok) {
      std::string key = records::affinity_key(k.node, k.pool, k.cidr);
      problem("dangling-affinity", key, "no block of " + k.node + " behind this index entry",
              {{"key", key}, {"node", k.node}, {"pool", k.pool}});
    }
  }
  json summary = {{"blocks", st.blocks().size()},
                  {"allocations", allocations},
                  {"handles", handles.size()},
                  {"problems", problems.size()}};
  if (as_json) {
    out << json{{"summary", summary}, {"problems", problems}}.dump(2) << "\n";
  } else {
    if (!problems.empty()) {
      t.print(out);
      out << "\n";
    }
    out << st.blocks().size() << " blocks, " << allocations << " allocations, " << handles.size()
        << " handles: "
        << (problems.empty() ? "no problems" : std::to_string(problems.size()) + " problems")
        << "\n";
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace global_ipam::cli
