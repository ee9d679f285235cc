#include "libcni/kernel/fdb.h"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>

#include "libcni/kernel/neigh.h"

namespace cni {

namespace {

std::string describe(const FdbSpec& e) {
  return e.mac.str() + " dst " + e.dst.str() + " dev if" + std::to_string(e.ifindex);
}

NeighRequest request_of(const FdbSpec& e) {
  NeighRequest r;
  r.family = AF_BRIDGE;
  r.ifindex = e.ifindex;
  r.state = NUD_PERMANENT;
  r.flags = NTF_SELF;  // the vxlan device's own table, not a bridge master's
  r.dst = e.dst;
  r.lladdr = e.mac;
  return r;
}

}  // namespace

void replace_fdb(NlSocket& sock, const FdbSpec& entry) {
  neighbour_request(sock, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, request_of(entry),
                    "failed to add fdb entry " + describe(entry));
}

void delete_fdb(NlSocket& sock, const FdbSpec& entry) {
  neighbour_request(sock, RTM_DELNEIGH, 0, request_of(entry),
                    "failed to delete fdb entry " + describe(entry));
}

bool delete_fdb_if_exists(NlSocket& sock, const FdbSpec& entry) {
  try {
    delete_fdb(sock, entry);
    return true;
  } catch (const NetlinkError& e) {
    if (e.sys_errno() == ENOENT || e.sys_errno() == ENODEV) return false;
    throw;
  }
}

std::vector<FdbInfo> list_fdb(NlSocket& sock, int ifindex) {
  std::vector<FdbInfo> out;
  for (const NeighRequest& r : dump_neighbours(sock)) {
    if (r.family != AF_BRIDGE || r.ifindex != ifindex || !r.lladdr) continue;
    if (!(r.flags & NTF_SELF)) continue;
    out.push_back(FdbInfo{r.ifindex, *r.lladdr, r.dst, r.state, r.flags});
  }
  return out;
}

}  // namespace cni
