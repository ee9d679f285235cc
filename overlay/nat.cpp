#include "overlay/nat.h"

#include <sys/socket.h>

#include <algorithm>
#include <optional>
#include <sstream>

#include "overlay/nftables.h"

namespace overlay {

namespace {

const char* family_name(int family) { return family == AF_INET ? "ip" : "ip6"; }

// A CIDR as nft prints it: the network address, and no prefix when it is the full length.
std::string nft_prefix(const cni::IpNet& cidr) {
  const cni::IpNet net = cidr.network();
  const int full = net.ip.is_v4() ? 32 : 128;
  return net.prefix == full ? net.ip.str() : net.str();
}

// `text` with every run of white space made one space and none at either end: nft indents
// its listing with tabs, and the comparison is about the rules, not their layout.
std::string squeeze(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// The families of our tables that exist now, from `list tables` ("table ip strait-nat").
std::vector<std::string> existing_families(Nftables& nft) {
  std::istringstream in(nft.run("list tables", "cannot list the nftables tables"));
  std::vector<std::string> out;
  std::string word, family, name;
  while (in >> word >> family >> name) {
    if (word == "table" && name == kNatTable) out.push_back(family);
  }
  return out;
}

}  // namespace

std::string nat_table(const std::vector<ipam::PoolConfig>& pools, int family) {
  const std::string f = family_name(family);
  const std::string addr = family == AF_INET ? "ip" : "ip6";
  std::string returns, masquerades;
  for (const auto& p : pools) {
    if (p.family() != family) continue;
    returns += "\t\t" + addr + " daddr " + nft_prefix(p.cidr()) + " return\n";
    if (p.masquerades())
      masquerades += "\t\t" + addr + " saddr " + nft_prefix(p.cidr()) + " masquerade\n";
  }
  if (masquerades.empty()) return "";
  return "table " + f + " " + kNatTable +
         " {\n"
         "\tchain postrouting {\n"
         "\t\ttype nat hook postrouting priority srcnat; policy accept;\n" +
         returns + masquerades + "\t}\n}\n";
}

int reconcile_nat(const std::vector<ipam::PoolConfig>& pools, cni::Logger& log) {
  const std::string wanted_of[] = {nat_table(pools, AF_INET), nat_table(pools, AF_INET6)};
  std::optional<Nftables> made;
  std::vector<std::string> existing;
  try {
    made.emplace();
    existing = existing_families(*made);
  } catch (const NftError&) {
    // A kernel without nf_tables (or a node without libnftables) cannot hold a table of ours:
    // when no pool wants one, there is nothing to remove, and natOutgoing false must not need
    // nftables at all.
    if (wanted_of[0].empty() && wanted_of[1].empty()) return 0;
    throw;
  }
  Nftables& nft = *made;
  std::string batch;
  int writes = 0;
  for (int i = 0; i < 2; ++i) {
    const int family = i == 0 ? AF_INET : AF_INET6;
    const std::string f = family_name(family);
    const std::string table = f + " " + kNatTable;
    const std::string& wanted = wanted_of[i];
    const bool exists = std::find(existing.begin(), existing.end(), f) != existing.end();
    if (!exists && wanted.empty()) continue;
    if (exists && !wanted.empty() &&
        squeeze(nft.run("list table " + table, "cannot list table " + table)) == squeeze(wanted)) {
      continue;
    }
    if (wanted.empty()) {
      batch += "delete table " + table + "\n";
      log.info("removing table " + table + ": no " + f + " pool has natOutgoing");
    } else {
      // Made first so that the delete finds it, whether it existed or not: the table is
      // replaced whole, in the same transaction.
      batch += "add table " + table + "\ndelete table " + table + "\n" + wanted;
      log.info((exists ? "replacing table " : "adding table ") + table);
    }
    ++writes;
  }
  if (!batch.empty()) {
    nft.run(batch,
            "nftables refused the outgoing NAT (table " + std::string(kNatTable) +
                "); the kernel needs nf_tables with NAT and masquerade (CONFIG_NF_TABLES, "
                "CONFIG_NFT_NAT, CONFIG_NFT_MASQ, and CONFIG_NF_TABLES_IPV6 for IPv6 pools)");
  }
  return writes;
}

}  // namespace overlay
