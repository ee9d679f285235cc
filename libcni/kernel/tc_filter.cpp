#include "libcni/kernel/tc_filter.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/tc.h>

#include <stdexcept>

namespace cni {

namespace {

rtnl_tc* as_tc(rtnl_cls* c) { return reinterpret_cast<rtnl_tc*>(c); }
rtnl_tc* as_tc(rtnl_act* a) { return reinterpret_cast<rtnl_tc*>(a); }

struct MirredName {
  MirredKind kind;
  int kernel;  // TCA_*_REDIR / TCA_*_MIRROR
  const char* name;
};
constexpr MirredName kMirredKinds[] = {
    {MirredKind::kEgressRedirect, TCA_EGRESS_REDIR, "egress redirect"},
    {MirredKind::kEgressMirror, TCA_EGRESS_MIRROR, "egress mirror"},
    {MirredKind::kIngressRedirect, TCA_INGRESS_REDIR, "ingress redirect"},
    {MirredKind::kIngressMirror, TCA_INGRESS_MIRROR, "ingress mirror"},
};

const MirredName& mirred_name(MirredKind kind) {
  for (const auto& m : kMirredKinds) {
    if (m.kind == kind) return m;
  }
  throw std::invalid_argument("unknown mirred kind");
}

std::string protocol_str(uint16_t protocol) {
  if (protocol == kEthPAll) return "all";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", protocol);
  return buf;
}

// A cls object with what both adding and deleting name: device, parent, priority, protocol.
RtnlClsPtr base_cls(int ifindex, uint32_t parent, uint16_t priority, uint16_t protocol) {
  if (ifindex <= 0) throw std::invalid_argument("a filter needs a device index");
  RtnlClsPtr cls(rtnl_cls_alloc());
  if (!cls) throw std::bad_alloc();
  rtnl_tc_set_ifindex(as_tc(cls.get()), ifindex);
  rtnl_tc_set_parent(as_tc(cls.get()), parent);
  rtnl_cls_set_prio(cls.get(), priority);
  // Set even when 0: libnl reads an unset protocol as ETH_P_ALL.
  rtnl_cls_set_protocol(cls.get(), protocol);
  return cls;
}

void check(int rc, const std::string& what) {
  if (rc < 0) throw NetlinkError("failed to build " + what, rc);
}

RtnlActPtr build_mirred(const MirredAction& m, const std::string& what) {
  if (m.ifindex <= 0) throw std::invalid_argument("a mirred action needs a target device");
  RtnlActPtr act(rtnl_act_alloc());
  if (!act) throw std::bad_alloc();
  check(rtnl_tc_set_kind(as_tc(act.get()), "mirred"), what);
  check(rtnl_mirred_set_action(act.get(), mirred_name(m.kind).kernel), what);
  check(rtnl_mirred_set_ifindex(act.get(), static_cast<uint32_t>(m.ifindex)), what);
  check(rtnl_mirred_set_policy(act.get(), static_cast<int>(m.verdict)), what);
  return act;
}

std::optional<MirredAction> read_mirred(rtnl_act* act) {
  const int kernel = rtnl_mirred_get_action(act);
  for (const auto& m : kMirredKinds) {
    if (m.kernel != kernel) continue;
    return MirredAction{.kind = m.kind,
                        .ifindex = static_cast<int>(rtnl_mirred_get_ifindex(act)),
                        .verdict = static_cast<TcVerdict>(rtnl_mirred_get_policy(act))};
  }
  return std::nullopt;
}

}  // namespace

std::string U32Filter::str() const {
  std::string s = "u32 prio " + std::to_string(priority) + " protocol " + protocol_str(protocol) +
                  " parent " + tc_handle_str(parent) + " dev if" + std::to_string(ifindex);
  if (keys.empty()) s += " match all";
  for (const auto& k : keys) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " match %08x/%08x at %d", ntohl(k.value), ntohl(k.mask),
                  k.offset);
    s += buf;
  }
  if (classid) s += " flowid " + tc_handle_str(*classid);
  for (const auto& a : actions) {
    s += std::string(" action mirred ") + mirred_name(a.kind).name + " dev if" +
         std::to_string(a.ifindex);
  }
  return s;
}

U32Filter u32_redirect_all(int ifindex, uint32_t parent, int target_ifindex) {
  U32Filter f;
  f.ifindex = ifindex;
  f.parent = parent;
  f.priority = 1;
  f.protocol = kEthPAll;
  f.classid = tc_handle(1, 1);
  f.actions.push_back({.kind = MirredKind::kEgressRedirect,
                       .ifindex = target_ifindex,
                       .verdict = TcVerdict::kStolen});
  return f;
}

void add_u32_filter(NlSocket& sock, const U32Filter& filter) {
  const std::string what = "filter " + filter.str();
  RtnlClsPtr cls = base_cls(filter.ifindex, filter.parent, filter.priority, filter.protocol);
  check(rtnl_tc_set_kind(as_tc(cls.get()), "u32"), what);
  if (filter.keys.empty()) {
    check(rtnl_u32_add_key(cls.get(), 0, 0, 0, 0), what);
  } else {
    for (const auto& k : filter.keys) {
      check(rtnl_u32_add_key(cls.get(), k.value, k.mask, k.offset, k.offmask), what);
    }
  }
  // A terminal selector: a match ends the classification here (tc sets it for flowid/action).
  check(rtnl_u32_set_flags(cls.get(), TC_U32_TERMINAL), what);
  if (filter.classid) check(rtnl_u32_set_classid(cls.get(), *filter.classid), what);
  for (const auto& a : filter.actions) {
    RtnlActPtr act = build_mirred(a, what);
    check(rtnl_u32_add_action(cls.get(), act.get()), what);  // takes its own reference
  }
  const int rc =
      sock.call([&](nl_sock* s) { return rtnl_cls_add(s, cls.get(), NLM_F_CREATE | NLM_F_EXCL); });
  if (rc < 0) throw sock.error("failed to add " + what, rc);
}

void delete_filters(NlSocket& sock, int ifindex, uint32_t parent, uint16_t priority,
                    uint16_t protocol) {
  RtnlClsPtr cls = base_cls(ifindex, parent, priority, protocol);
  const int rc = sock.call([&](nl_sock* s) { return rtnl_cls_delete(s, cls.get(), 0); });
  if (rc < 0) {
    throw sock.error("failed to delete the filters of prio " + std::to_string(priority) + " at " +
                         tc_handle_str(parent) + " of dev if" + std::to_string(ifindex),
                     rc);
  }
}

std::vector<TcFilter> list_filters(NlSocket& sock, int ifindex, uint32_t parent) {
  NlCachePtr cache = sock.dump(
      "failed to list the filters at " + tc_handle_str(parent) + " of dev if" +
          std::to_string(ifindex),
      [&](nl_sock* s, nl_cache** c) { return rtnl_cls_alloc_cache(s, ifindex, parent, c); });
  std::vector<TcFilter> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* cls = reinterpret_cast<rtnl_cls*>(o);
    rtnl_tc* tc = as_tc(cls);
    TcFilter f;
    f.ifindex = rtnl_tc_get_ifindex(tc);
    f.parent = rtnl_tc_get_parent(tc);
    f.handle = rtnl_tc_get_handle(tc);
    f.priority = rtnl_cls_get_prio(cls);
    f.protocol = rtnl_cls_get_protocol(cls);
    if (const char* kind = rtnl_tc_get_kind(tc)) f.kind = kind;
    // The per-priority header of a classifier has no handle.
    if (f.handle == 0) continue;
    if (f.kind == "u32") {
      uint32_t value = 0, mask = 0;
      int off = 0, offmask = 0;
      for (uint8_t i = 0; rtnl_u32_get_key(cls, i, &value, &mask, &off, &offmask) == 0; ++i) {
        f.u32_keys.push_back({value, mask, off, offmask});
      }
      // A hash table node (800:) has neither keys nor a target.
      if (f.u32_keys.empty()) continue;
      if (uint32_t classid = 0; rtnl_u32_get_classid(cls, &classid) == 0) f.classid = classid;
      for (rtnl_act* a = rtnl_u32_get_action(cls); a; a = rtnl_act_next(a)) {
        TcAction action;
        if (const char* kind = rtnl_tc_get_kind(as_tc(a))) action.kind = kind;
        if (action.kind == "mirred") action.mirred = read_mirred(a);
        f.actions.push_back(std::move(action));
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace cni
