#include "plugins/global-ipam/report.h"

#include <algorithm>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/nodes.h"
#include "ipam/global/records.h"
#include "plugins/global-ipam/snapshot.h"
#include "plugins/global-ipam/table.h"

namespace global_ipam::cli {

namespace {

using ipam::Block;
using ipam::PoolConfig;
using nlohmann::json;

std::string u128(cni::Uint128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return s;
}

// A number for JSON: exact when it fits 64 bits, else its decimal text.
json number(cni::Uint128 v) {
  if (v <= UINT64_MAX) return static_cast<uint64_t>(v);
  return u128(v);
}

}  // namespace

int show(ipam::KvStore& store, std::vector<PoolConfig> pools, bool with_blocks,
         const std::string& node, bool as_json, std::ostream& out) {
  Snapshot st(store, std::move(pools));
  json jpools = json::array();
  json jblocks = json::array();
  Table tp({"POOL", "CIDR", "BLOCKSIZE", "BLOCKS", "USED", "USABLE", "BORROWED"});
  Table tb({"BLOCK", "POOL", "NODE", "USED", "FREE", "BORROWED"});
  for (const auto& p : st.pools()) {
    uint64_t blocks = 0;
    uint64_t used = 0;
    uint64_t usable_in_blocks = 0;
    uint64_t borrowed = 0;
    for (const auto& b : st.blocks()) {
      if (b.block.pool != p.name) continue;
      bool mine = node.empty() || b.block.affinity == node;
      for (const auto& [ord, a] : b.block.allocations) {
        // With --node: what the node took elsewhere; without: all borrowing.
        if (b.block.borrowed(a) && (node.empty() || a.node == node)) ++borrowed;
      }
      if (!mine) continue;
      ++blocks;
      used += b.block.allocations.size();
      usable_in_blocks += Snapshot::usable_in(b);
    }
    json jp = {{"name", p.name},
               {"cidr", p.cidr().str()},
               {"blockSize", p.layout.block_size()},
               {"blocks", blocks},
               {"used", used},
               {"borrowed", borrowed},
               {"totalBlocks", number(p.layout.count())}};
    std::string usable;
    if (node.empty()) {
      jp["usable"] = number(p.range.capacity());  // without network, broadcast, gateway
      usable = u128(p.range.capacity());
    } else {
      jp["node"] = node;
      jp["usable"] = usable_in_blocks;
      usable = std::to_string(usable_in_blocks);
    }
    jpools.push_back(jp);
    tp.add({p.name, p.cidr().str(), std::to_string(p.layout.block_size()),
            std::to_string(blocks) + "/" + u128(p.layout.count()), std::to_string(used), usable,
            std::to_string(borrowed)});
  }
  if (with_blocks) {
    for (const auto& b : st.blocks()) {
      if (!node.empty() && b.block.affinity != node) continue;
      uint32_t used = static_cast<uint32_t>(b.block.allocations.size());
      uint32_t free = Snapshot::usable_in(b) - std::min(used, Snapshot::usable_in(b));
      uint32_t lent = 0;
      json allocs = json::array();
      for (const auto& [ord, a] : b.block.allocations) {
        if (b.block.borrowed(a)) ++lent;
        allocs.push_back({{"ip", b.block.address(ord).str()},
                          {"handle", a.handle},
                          {"node", a.node},
                          {"seq", a.seq}});
      }
      jblocks.push_back({{"cidr", b.block.cidr.str()},
                         {"pool", b.block.pool},
                         {"node", b.block.affinity},
                         {"used", used},
                         {"free", free},
                         {"borrowed", lent},
                         {"allocations", allocs}});
      tb.add({b.block.cidr.str(), b.block.pool, b.block.affinity.empty() ? "-" : b.block.affinity,
              std::to_string(used), std::to_string(free), std::to_string(lent)});
    }
  }
  if (as_json) {
    json j = {{"pools", jpools}};
    if (with_blocks) j["blocks"] = jblocks;
    out << j.dump(2) << "\n";
  } else {
    tp.print(out);
    if (with_blocks) {
      out << "\n";
      tb.print(out);
    }
  }
  return 0;
}

int nodes(ipam::KvStore& store, bool as_json, std::ostream& out) {
  std::map<std::string, int> blocks;
  for (const auto& e : store.list(ipam::records::blocks_prefix())) {
    if (!ipam::records::parse_block_key(e.key)) continue;  // `check` reports it
    blocks[Block::decode(e.value).affinity]++;
  }
  std::map<std::string, std::optional<ipam::records::NodeRecord>> nodes;
  for (auto& n : ipam::nodes::list(store)) nodes[n.name] = n;
  for (const auto& [name, count] : blocks) {
    if (!name.empty() && !nodes.count(name)) nodes[name] = std::nullopt;  // blocks, no record
  }
  json j = json::array();
  Table t({"NODE", "ADDRESS", "BLOCKS", "ATTRIBUTES"});
  for (const auto& [name, rec] : nodes) {
    std::string attrs;
    json jattrs = json::object();
    if (rec) {
      for (const auto& [k, v] : rec->attributes) {
        attrs += (attrs.empty() ? "" : ",") + k + "=" + v;
        jattrs[k] = v;
      }
    }
    std::string addr = rec && rec->address ? rec->address->str() : "";
    int n = blocks.count(name) ? blocks[name] : 0;
    j.push_back({{"name", name},
                 {"address", addr},
                 {"blocks", n},
                 {"attributes", jattrs},
                 {"record", rec.has_value()}});
    t.add({name, addr.empty() ? "-" : addr, std::to_string(n),
           rec ? (attrs.empty() ? "-" : attrs) : "(no node record)"});
  }
  if (as_json) {
    out << j.dump(2) << "\n";
  } else {
    t.print(out);
  }
  return 0;
}

}  // namespace global_ipam::cli
