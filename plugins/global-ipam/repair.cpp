#include "plugins/global-ipam/repair.h"

#include <ctime>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "ipam/global/block_allocator.h"
#include "ipam/global/dead_nodes.h"
#include "ipam/global/nodes.h"
#include "libcni/core/error.h"

namespace global_ipam::cli {

namespace {

using ipam::records::Handle;
using nlohmann::json;

// An allocator for releases, which depend on no node and no pool config.
ipam::BlockAllocator releaser(ipam::KvStore& store, const std::vector<ipam::PoolConfig>& none) {
  ipam::AllocatorOptions o;
  o.node = "global-ipam-cli";
  return ipam::BlockAllocator(none, store, o);
}

}  // namespace

int release(ipam::KvStore& store, const std::string& handle_id, bool as_json, std::ostream& out,
            std::ostream& err) {
  auto h = Handle::parse(handle_id);
  if (!h) {
    err << "global-ipam: --handle \"" << handle_id << "\" is not NETWORK/CONTAINERID/IFNAME\n";
    return 1;
  }
  std::vector<ipam::PoolConfig> none;
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

int gc(ipam::KvStore& store, const std::vector<ValidAttachment>& valid, const std::string& node,
       const std::string& network, bool dry_run, bool as_json, std::ostream& out,
       std::ostream& err) {
  std::vector<ipam::PoolConfig> none;
  auto alloc = releaser(store, none);
  auto report = alloc.collect(
      {network, node, true}, [&](const Handle& h) { return is_valid(valid, h); }, dry_run);
  json j = json::array();
  for (const auto& c : report.released) {
    j.push_back({{"ip", c.address.ip.str()}, {"handle", c.handle}, {"node", c.node}});
    if (!as_json) {
      out << (dry_run ? "would release " : "released ") << c.address.ip.str() << " of " << c.handle
          << " (node " << c.node << ")\n";
    }
  }
  for (const auto& e : report.errors) err << "global-ipam: gc: " << e << "\n";
  if (as_json) {
    out << json{{"dryRun", dry_run}, {"released", j}, {"errors", report.errors}}.dump(2) << "\n";
  } else if (j.empty() && report.errors.empty()) {
    out << "nothing to release\n";
  }
  return report.errors.empty() ? 0 : 1;
}

int gc_dead_nodes(ipam::KvStore& store, const std::function<bool(const std::string&)>& alive,
                  int64_t grace_s, bool dry_run, bool as_json, std::ostream& out,
                  std::ostream& err) {
  ipam::DeadNodeGc gc;
  gc.alive = alive;
  gc.grace_s = grace_s;
  gc.now = static_cast<int64_t>(std::time(nullptr));
  gc.dry_run = dry_run;
  auto r = ipam::collect_dead_nodes(store, gc);
  json released = json::array();
  for (const auto& c : r.released) {
    released.push_back({{"ip", c.address.ip.str()}, {"handle", c.handle}, {"node", c.node}});
  }
  for (const auto& e : r.errors) err << "global-ipam: gc: " << e << "\n";
  if (as_json) {
    out << json{{"dryRun", dry_run},           {"suspected", r.suspected},
                {"collected", r.collected},    {"revived", r.revived},
                {"released", released},        {"blocksReleased", r.blocks_released},
                {"blocksKept", r.blocks_kept}, {"errors", r.errors}}
               .dump(2)
        << "\n";
    return r.errors.empty() ? 0 : 1;
  }
  for (const auto& n : r.suspected) {
    out << "node " << n << " is gone: " << (dry_run ? "would be " : "") << "marked; collected "
        << "when still gone " << grace_s << " s after it was first found gone\n";
  }
  for (const auto& n : r.revived) out << "node " << n << " is back: unmarked\n";
  for (const auto& c : r.released) {
    out << (dry_run ? "would release " : "released ") << c.address.ip.str() << " of " << c.handle
        << " (node " << c.node << ")\n";
  }
  for (const auto& b : r.blocks_released)
    out << (dry_run ? "would release " : "released ") << b << "\n";
  for (const auto& b : r.blocks_kept) {
    out << "kept " << b << ": other nodes still hold addresses in it\n";
  }
  if (r.suspected.empty() && r.collected.empty() && r.revived.empty()) {
    out << "no node is gone\n";
  }
  return r.errors.empty() ? 0 : 1;
}

int set_node(ipam::KvStore& store, const std::string& name, const std::string& address,
             const std::vector<std::string>& attrs, bool as_json, std::ostream& out) {
  ipam::records::NodeRecord rec;
  rec.name = name;
  if (!cni::is_valid_name(name)) throw std::runtime_error("invalid node name " + name);
  if (!address.empty()) rec.address = cni::IpAddress::parse(address);
  for (const auto& a : attrs) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::runtime_error("--attr \"" + a + "\" is not KEY=VALUE");
    }
    rec.attributes[a.substr(0, eq)] = a.substr(eq + 1);
  }
  auto stored = ipam::nodes::put(store, rec);
  if (as_json) {
    out << stored.to_json().dump(2) << "\n";
  } else {
    out << "node " << stored.name << " updated\n";
  }
  return 0;
}

}  // namespace global_ipam::cli
