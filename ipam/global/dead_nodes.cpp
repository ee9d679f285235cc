#include "ipam/global/dead_nodes.h"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/records.h"

namespace ipam {

namespace {

using nlohmann::json;

struct NodeView {
  int64_t latest = 0;  // the latest revision of its handle and node records
  std::vector<std::pair<KvEntry, Block>> blocks;  // the blocks it owns
};

}  // namespace

DeadNodeReport collect_dead_nodes(KvStore& store, const DeadNodeGc& gc) {
  DeadNodeReport report;
  auto attempt = [&](const std::string& what, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      report.errors.push_back(what + ": " + e.what());
    }
  };

  // Every node the store knows of, and what it holds.
  std::map<std::string, NodeView> nodes;
  for (const auto& e : store.list(records::nodes_prefix())) {
    if (auto n = records::parse_node_key(e.key)) {
      nodes[*n].latest = std::max(nodes[*n].latest, e.revision);
    }
  }
  for (const auto& e : store.list(records::handles_prefix())) {
    if (!records::parse_handle_key(e.key)) continue;
    attempt(e.key, [&] {
      auto rec = records::HandleRecord::from_json(json::parse(e.value));
      nodes[rec.node].latest = std::max(nodes[rec.node].latest, e.revision);
    });
  }
  for (const auto& e : store.list(records::blocks_prefix())) {
    if (!records::parse_block_key(e.key)) continue;
    attempt(e.key, [&] {
      Block b = Block::decode(e.value);
      if (!b.affinity.empty()) nodes[b.affinity].blocks.emplace_back(e, b);
      for (const auto& [ord, a] : b.allocations) nodes[a.node];
    });
  }
  std::map<std::string, KvEntry> index;  // affinity index entries, by key
  for (auto& e : store.list(records::affinity_prefix(), true)) {
    if (auto k = records::parse_affinity_key(e.key)) {
      nodes[k->node];
      index[e.key] = std::move(e);
    }
  }
  std::map<std::string, KvEntry> marks;  // by node
  for (auto& e : store.list(records::dead_node_marks_prefix())) {
    if (auto n = records::parse_dead_node_mark_key(e.key)) marks[*n] = std::move(e);
  }
  nodes.erase("");

  auto unmark = [&](const std::string& node) {
    auto m = marks.find(node);
    if (m == marks.end() || gc.dry_run) return;
    attempt(m->first, [&] { store.erase_if(m->second.key, m->second.revision); });
  };
  // Marks of nodes that are alive again, or of which nothing is left.
  for (const auto& [node, e] : marks) {
    if (!nodes.count(node) || gc.alive(node)) {
      if (nodes.count(node)) report.revived.push_back(node);
      unmark(node);
    }
  }

  ipam::AllocatorOptions o;
  o.node = "global-ipam-gc";  // releases depend on no node
  std::vector<PoolConfig> no_pools;
  BlockAllocator releaser(no_pools, store, o);
  // Named references, not structured bindings: clang before 16 cannot capture those.
  for (const auto& node_view : nodes) {
    const std::string& node = node_view.first;
    const NodeView& view = node_view.second;
    if (gc.alive(node)) continue;
    auto m = marks.find(node);
    std::optional<records::DeadNodeMark> mark;
    if (m != marks.end()) {
      attempt(m->second.key,
              [&] { mark = records::DeadNodeMark::from_json(json::parse(m->second.value)); });
    }
    // First observation, or written for since the first: (re)marked, nothing released.
    if (!mark || view.latest > mark->revision) {
      if (mark) report.revived.push_back(node);
      report.suspected.push_back(node);
      if (gc.dry_run) continue;
      attempt(records::dead_node_mark_key(node), [&] {
        records::DeadNodeMark fresh{gc.now, view.latest};
        store.put_if(records::dead_node_mark_key(node), fresh.to_json().dump(),
                     m == marks.end() ? 0 : m->second.revision);
      });
      continue;
    }
    if (gc.now - mark->first_seen < gc.grace_s) {
      report.suspected.push_back(node);  // seen dead twice, but not yet grace apart
      continue;
    }
    // Dead on two observations at least the grace period apart, nothing written for it in
    // between: collect it.
    report.collected.push_back(node);
    auto got = releaser.collect(
        {"", node, true}, [](const records::Handle&) { return false; }, gc.dry_run);
    report.released.insert(report.released.end(), got.released.begin(), got.released.end());
    report.errors.insert(report.errors.end(), got.errors.begin(), got.errors.end());
    bool all_gone = true;
    for (const auto& entry_block : view.blocks) {
      const KvEntry& entry = entry_block.first;
      attempt(entry.key, [&] {
        // As it is now (the releases above rewrote it), unless only reporting.
        auto now = gc.dry_run ? std::optional<KvEntry>(entry) : store.get(entry.key);
        if (!now) return;
        Block b = Block::decode(now->value);
        bool others = std::any_of(b.allocations.begin(), b.allocations.end(),
                                  [&](const auto& a) { return a.second.node != node; });
        if (b.affinity != node || others) {
          report.blocks_kept.push_back(entry.key);
          all_gone = false;
          return;
        }
        if (!gc.dry_run && !store.erase_if(now->key, now->revision)) {
          all_gone = false;
          report.errors.push_back(entry.key + ": changed while being released");
          return;
        }
        report.blocks_released.push_back(entry.key);
        std::string idx = records::affinity_key(node, b.pool, b.cidr);
        if (auto it = index.find(idx); it != index.end() && !gc.dry_run) {
          store.erase_if(it->first, it->second.revision);
          index.erase(it);
        }
      });
    }
    if (gc.dry_run) continue;
    // Index entries without their block (claims cut short), the node record, the mark.
    for (const auto& key_entry : index) {
      const std::string& key = key_entry.first;
      const KvEntry& e = key_entry.second;
      auto k = records::parse_affinity_key(key);
      if (k && k->node == node && !store.get(records::block_key(k->pool, k->cidr))) {
        attempt(key, [&] { store.erase_if(key, e.revision); });
      }
    }
    attempt(records::node_key(node), [&] {
      if (auto rec = store.get(records::node_key(node))) store.erase_if(rec->key, rec->revision);
    });
    if (all_gone) unmark(node);
  }
  return report;
}

}  // namespace ipam
