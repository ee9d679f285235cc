#include "plugins/global-ipam/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipam/global/block.h"
#include "ipam/global/block_allocator.h"
#include "ipam/global/config.h"
#include "ipam/global/nodes.h"
#include "ipam/global/records.h"
#include "ipam/global/store_factory.h"
#include "libcni/core/error.h"

namespace global_ipam {

namespace {

using ipam::Block;
using ipam::KvStore;
using ipam::PoolConfig;
using ipam::records::Handle;
using ipam::records::HandleRecord;
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

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read \"" + path + "\"");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw std::runtime_error("\"" + path + "\" is not JSON: " + e.what());
  }
}

// The ipam object of a config file: a .conflist's plugin whose ipam is global-ipam, a
// .conf's ipam, or the file itself when it is an ipam object.
json ipam_object(const json& j, const std::string& path) {
  auto is_ours = [](const json& ipam) {
    return ipam.is_object() && ipam.value("type", "") == "global-ipam";
  };
  if (j.contains("plugins") && j["plugins"].is_array()) {
    for (const auto& p : j["plugins"]) {
      if (p.contains("ipam") && is_ours(p["ipam"])) return p["ipam"];
    }
  }
  if (j.contains("ipam") && is_ours(j["ipam"])) return j["ipam"];
  if (j.contains("pools") || j.contains("store")) return j;
  throw std::runtime_error("\"" + path + "\" holds no global-ipam config");
}

// An ordered text table.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      width.resize(std::max(width.size(), r.size()));
      for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
      }
      out << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A valid attachment given to check/gc: network empty matches every network.
struct Valid {
  std::string network;
  std::string container_id;
  std::string ifname;
};

std::vector<Valid> read_valid(const std::string& path) {
  json j = read_json_file(path);
  const json* list = &j;
  if (j.is_object()) {
    for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
      if (j.contains(key)) {
        list = &j[key];
        break;
      }
    }
  }
  if (!list->is_array()) {
    throw std::runtime_error("\"" + path +
                             "\": expected a list of {containerID, ifname[, network]} or an "
                             "object with cni.dev/valid-attachments");
  }
  std::vector<Valid> out;
  for (const auto& a : *list) {
    if (!a.is_object() || !a.contains("containerID") || !a.contains("ifname")) {
      throw std::runtime_error("\"" + path + "\": entry " + a.dump() +
                               " needs containerID and ifname");
    }
    out.push_back(Valid{a.value("network", ""), a["containerID"].get<std::string>(),
                        a["ifname"].get<std::string>()});
  }
  return out;
}

bool is_valid(const std::vector<Valid>& valid, const Handle& h) {
  return std::any_of(valid.begin(), valid.end(), [&](const Valid& v) {
    return v.container_id == h.container_id && v.ifname == h.ifname &&
           (v.network.empty() || v.network == h.network);
  });
}

struct LoadedBlock {
  std::string key;
  Block block;
  const PoolConfig* pool = nullptr;  // null: a pool neither configured nor recorded
};

// Everything the reports need, read once.
class State {
 public:
  State(KvStore& store, std::vector<PoolConfig> configured) : pools_(std::move(configured)) {
    // Pools recorded in the store that the config does not define are shown too.
    for (const auto& e : store.list(ipam::records::pools_prefix())) {
      auto parsed = ipam::records::parse_pool_key(e.key);
      if (!parsed) continue;
      std::string name = *parsed;
      if (pool(name)) continue;
      auto rec = ipam::records::PoolRecord::from_json(json::parse(e.value));
      PoolConfig p;
      p.name = name;
      p.layout = ipam::BlockLayout(rec.cidr, rec.block_size);
      p.range = ipam::Range::make(rec.cidr, std::nullopt, std::nullopt, rec.cidr.ip);
      pools_.push_back(std::move(p));
    }
    for (auto& e : store.list("blocks/")) {
      if (!ipam::records::parse_block_key(e.key)) continue;
      LoadedBlock lb;
      lb.key = e.key;
      lb.block = Block::from_json(json::parse(e.value));
      blocks_.push_back(std::move(lb));
    }
    for (auto& b : blocks_) b.pool = pool(b.block.pool);
    // By pool, then by address (keys sort as text: 10.0.10.0 before 10.0.2.0).
    std::sort(blocks_.begin(), blocks_.end(), [](const LoadedBlock& a, const LoadedBlock& b) {
      return std::tie(a.block.pool, a.block.cidr.ip) < std::tie(b.block.pool, b.block.cidr.ip);
    });
  }
  const PoolConfig* pool(const std::string& name) const {
    for (const auto& p : pools_) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  const std::vector<PoolConfig>& pools() const { return pools_; }
  const std::vector<LoadedBlock>& blocks() const { return blocks_; }

  static uint32_t usable_in(const LoadedBlock& b) {
    if (!b.pool) return b.block.size();
    uint32_t n = 0;
    for (uint32_t o = 0; o < b.block.size(); ++o) n += b.pool->usable(b.block.address(o));
    return n;
  }

 private:
  std::vector<PoolConfig> pools_;
  std::vector<LoadedBlock> blocks_;
};

std::string family_total(const PoolConfig& p) { return u128(p.layout.count()); }

int cmd_show(KvStore& store, std::vector<PoolConfig> pools, bool with_blocks,
             const std::string& node, bool as_json, std::ostream& out) {
  State st(store, std::move(pools));
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
      usable_in_blocks += State::usable_in(b);
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
            std::to_string(blocks) + "/" + family_total(p), std::to_string(used), usable,
            std::to_string(borrowed)});
  }
  if (with_blocks) {
    for (const auto& b : st.blocks()) {
      if (!node.empty() && b.block.affinity != node) continue;
      uint32_t used = static_cast<uint32_t>(b.block.allocations.size());
      uint32_t free = State::usable_in(b) - std::min(used, State::usable_in(b));
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

int cmd_nodes(KvStore& store, bool as_json, std::ostream& out) {
  std::map<std::string, int> blocks;
  for (const auto& e : store.list("blocks/")) {
    blocks[Block::from_json(json::parse(e.value)).affinity]++;
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

int cmd_check(KvStore& store, std::vector<PoolConfig> pools,
              const std::optional<std::vector<Valid>>& valid, bool as_json, std::ostream& out) {
  State st(store, std::move(pools));
  std::map<std::string, HandleRecord> handles;
  for (const auto& e : store.list("handles/")) {
    auto h = ipam::records::parse_handle_key(e.key);
    if (h) handles[h->id()] = HandleRecord::from_json(json::parse(e.value));
  }
  std::set<std::string> node_records;
  for (const auto& n : ipam::nodes::list(store)) node_records.insert(n.name);
  std::set<std::string> index;  // affinity keys
  for (const auto& e : store.list("affinity/", true)) index.insert(e.key);

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
  std::map<std::string, std::set<std::pair<std::string, uint64_t>>> confirmed;  // handle -> ip,seq
  size_t allocations = 0;
  for (const auto& b : st.blocks()) {
    const Block& blk = b.block;
    if (blk.affinity.empty()) {
      problem("block-without-owner", blk.cidr.str(), "pool " + blk.pool + ": no affinity",
              {{"block", blk.cidr.str()}, {"pool", blk.pool}});
    } else {
      if (!index.count(ipam::records::affinity_key(blk.affinity, blk.pool, blk.cidr))) {
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
                      [&](const auto& e) { return e.ip.str() == ip && e.seq == a.seq; });
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
  for (const auto& key : index) {
    auto k = ipam::records::parse_affinity_key(key);
    if (!k) continue;
    const std::string& node = k->node;
    const std::string& pool = k->pool;
    bool ok = std::any_of(st.blocks().begin(), st.blocks().end(), [&](const auto& b) {
      return b.block.pool == pool && b.block.cidr == k->cidr && b.block.affinity == node;
    });
    if (!ok) {
      problem("dangling-affinity", key, "no block of " + node + " behind this index entry",
              {{"key", key}, {"node", node}, {"pool", pool}});
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

ipam::BlockAllocator releaser(KvStore& store, const std::vector<PoolConfig>& no_pools) {
  ipam::AllocatorOptions o;
  o.node = "global-ipam-cli";  // releases do not depend on the node
  return ipam::BlockAllocator(no_pools, store, o);
}

int cmd_release(KvStore& store, const std::string& handle_id, bool as_json, std::ostream& out,
                std::ostream& err) {
  auto h = Handle::parse(handle_id);
  if (!h) {
    err << "global-ipam: --handle \"" << handle_id << "\" is not NETWORK/CONTAINERID/IFNAME\n";
    return 1;
  }
  std::vector<PoolConfig> none;
  auto alloc = releaser(store, none);
  auto released = alloc.release(*h);
  json j = json::array();
  for (const auto& a : released) j.push_back({{"ip", a.ip.str()}, {"block", a.block.str()}});
  if (as_json) {
    out << json{{"handle", handle_id}, {"released", j}}.dump(2) << "\n";
  } else if (released.empty()) {
    out << "nothing held by " << handle_id << "\n";
  } else {
    for (const auto& a : released) out << "released " << a.ip.str() << " of " << handle_id << "\n";
  }
  return 0;
}

int cmd_gc(KvStore& store, const std::vector<Valid>& valid, const std::string& node,
           const std::string& network, bool dry_run, bool as_json, std::ostream& out) {
  std::vector<PoolConfig> none;
  auto alloc = releaser(store, none);
  json j = json::array();
  auto note = [&](const std::string& ip, const std::string& handle, const std::string& owner) {
    j.push_back({{"ip", ip}, {"handle", handle}, {"node", owner}});
    if (!as_json) {
      out << (dry_run ? "would release " : "released ") << ip << " of " << handle << " (node "
          << owner << ")\n";
    }
  };
  std::string prefix = network.empty() ? "handles/" : ipam::records::handles_prefix(network);
  std::set<std::string> recorded;
  for (const auto& e : store.list(prefix)) {
    auto h = ipam::records::parse_handle_key(e.key);
    if (!h) continue;
    std::string id = h->id();
    recorded.insert(id);
    auto rec = HandleRecord::from_json(json::parse(e.value));
    if (!h || is_valid(valid, *h) || (!node.empty() && rec.node != node)) continue;
    if (dry_run) {
      for (const auto& a : alloc.held(*h)) note(a.ip.str(), id, rec.node);
      continue;
    }
    for (const auto& a : alloc.release(*h)) note(a.ip.str(), id, rec.node);
  }
  // Allocations no handle record names.
  for (const auto& e : store.list("blocks/")) {
    Block b = Block::from_json(json::parse(e.value));
    for (const auto& [ord, a] : b.allocations) {
      auto h = Handle::parse(a.handle);
      if (!h || recorded.count(a.handle) || is_valid(valid, *h)) continue;
      if ((!network.empty() && h->network != network) || (!node.empty() && a.node != node)) {
        continue;
      }
      if (store.get(h->key())) continue;  // recorded after the listing
      std::string ip = b.address(ord).str();
      if (dry_run) {
        note(ip, a.handle, a.node);
      } else if (alloc.release_address(b.pool, b.cidr, b.address(ord), a.handle, a.seq) ==
                 Block::ReleaseOutcome::kReleased) {
        note(ip, a.handle, a.node);
      }
    }
  }
  if (as_json) out << json{{"dryRun", dry_run}, {"released", j}}.dump(2) << "\n";
  if (!as_json && j.empty()) out << "nothing to release\n";
  return 0;
}

}  // namespace

int cli_main(const std::vector<std::string>& args, const cni::EnvMap& env, std::ostream& out,
             std::ostream& err) {
  CLI::App app{
      "global-ipam: the cluster-wide IPAM of Strait. Without arguments it speaks the CNI "
      "protocol (CNI_COMMAND...); with a command it inspects and repairs the block table.",
      "global-ipam"};
  app.require_subcommand(1);
  std::string config_file;
  std::string store_path;
  std::vector<std::string> endpoints;
  std::string prefix = ipam::kDefaultEtcdPrefix;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  int timeout_ms = ipam::kDefaultStoreTimeoutMs;
  bool as_json = false;
  app.add_option("--config", config_file,
                 "A CNI config (.conf, .conflist) or global-ipam ipam object: its store and pools");
  app.add_option("--store-path", store_path, "The file store's directory");
  app.add_option("--etcd-endpoints", endpoints, "etcd endpoints (http:// or https:// URLs)")
      ->delimiter(',');
  app.add_option("--etcd-prefix", prefix, "Key prefix in etcd")->capture_default_str();
  app.add_option("--ca-file", ca_file, "CA for https etcd endpoints");
  app.add_option("--cert-file", cert_file, "TLS client certificate for etcd");
  app.add_option("--key-file", key_file, "TLS client key for etcd");
  app.add_option("--timeout-ms", timeout_ms, "Store timeout")->capture_default_str();
  app.add_flag("--json", as_json, "Print JSON instead of tables");

  bool with_blocks = false;
  std::string node;
  auto* show = app.add_subcommand("show", "Pools and blocks: affinity, used and free addresses");
  show->add_flag("--blocks", with_blocks, "List every block");
  show->add_option("--node", node, "Only this node's blocks");
  app.add_subcommand("nodes", "Node records (underlay address, attributes) and their blocks");
  std::string valid_file;
  auto* check = app.add_subcommand(
      "check",
      "Report allocations without handle records (or, with --valid, whose attachment "
      "is not valid), blocks without an owner, leftovers of interrupted writes");
  check->add_option("--valid", valid_file,
                    "JSON list of valid attachments {containerID, ifname[, network]}");
  std::string handle;
  auto* release = app.add_subcommand("release", "Release every address of one handle");
  release->add_option("--handle", handle, "NETWORK/CONTAINERID/IFNAME")->required();
  std::string network;
  bool dry_run = false;
  auto* gc = app.add_subcommand("gc", "Release every allocation whose attachment is not valid");
  gc->add_option("--valid", valid_file, "JSON list of valid attachments")->required();
  gc->add_option("--node", node, "Only allocations of this node");
  gc->add_option("--network", network, "Only this network");
  gc->add_flag("--dry-run", dry_run, "Only print what would be released");
  std::string set_name;
  std::string address;
  std::vector<std::string> attrs;
  auto* set_node = app.add_subcommand("set-node", "Create or update a node record");
  set_node->add_option("name", set_name, "Node name")->required();
  set_node->add_option("--address", address, "Underlay address");
  set_node->add_option("--attr", attrs, "KEY=VALUE (an empty VALUE removes KEY); repeatable");

  std::vector<std::string> argv_store = {"global-ipam"};
  for (const auto& a : args) argv_store.push_back(a);
  std::vector<const char*> argv;
  for (const auto& a : argv_store) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : 1;
  }

  try {
    std::vector<PoolConfig> pools;
    ipam::StoreConfig sc;
    if (!config_file.empty()) {
      auto cfg = ipam::parse_global_ipam(ipam_object(read_json_file(config_file), config_file),
                                         "ipam", env);
      pools = cfg.pools;
      sc = cfg.store;
    }
    if (!store_path.empty()) {
      sc.type = ipam::StoreConfig::Type::kFile;
      sc.path = store_path;
    }
    if (!endpoints.empty()) {
      sc.type = ipam::StoreConfig::Type::kEtcd;
      sc.endpoints = endpoints;
      sc.prefix = prefix;
      sc.ca_file = ca_file;
      sc.cert_file = cert_file;
      sc.key_file = key_file;
    }
    if (app.count("--timeout-ms") || config_file.empty()) sc.timeout_ms = timeout_ms;
    auto store = ipam::open_global_store(sc);
    const std::string verb = app.get_subcommands().front()->get_name();
    if (verb == "show") return cmd_show(*store, pools, with_blocks, node, as_json, out);
    if (verb == "nodes") return cmd_nodes(*store, as_json, out);
    if (verb == "check") {
      std::optional<std::vector<Valid>> valid;
      if (!valid_file.empty()) valid = read_valid(valid_file);
      return cmd_check(*store, pools, valid, as_json, out);
    }
    if (verb == "release") return cmd_release(*store, handle, as_json, out, err);
    if (verb == "gc") {
      return cmd_gc(*store, read_valid(valid_file), node, network, dry_run, as_json, out);
    }
    if (verb == "set-node") {
      ipam::records::NodeRecord rec;
      rec.name = set_name;
      if (!cni::is_valid_name(set_name)) throw std::runtime_error("invalid node name " + set_name);
      if (!address.empty()) rec.address = cni::IpAddress::parse(address);
      for (const auto& a : attrs) {
        auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0) {
          throw std::runtime_error("--attr \"" + a + "\" is not KEY=VALUE");
        }
        rec.attributes[a.substr(0, eq)] = a.substr(eq + 1);
      }
      auto stored = ipam::nodes::put(*store, rec);
      if (as_json) {
        out << stored.to_json().dump(2) << "\n";
      } else {
        out << "node " << stored.name << " updated\n";
      }
      return 0;
    }
  } catch (const cni::Error& e) {
    err << "global-ipam: " << e.msg() << (e.details().empty() ? "" : "; " + e.details()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "global-ipam: " << e.what() << "\n";
    return 1;
  }
  return 1;
}

}  // namespace global_ipam
