#include "libcni/kernel/tc_class.h"

#include <linux/netlink.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/class.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>

#include <memory>
#include <stdexcept>

#include "libcni/kernel/qdisc.h"

namespace cni {

namespace {

rtnl_tc* as_tc(rtnl_class* c) { return reinterpret_cast<rtnl_tc*>(c); }

// Only this file builds rtnl_class objects (netlink.h's NlDeleter has no overload for them).
struct ClassDeleter {
  void operator()(rtnl_class* p) const noexcept { rtnl_class_put(p); }
};
using RtnlClassPtr = std::unique_ptr<rtnl_class, ClassDeleter>;

void check(int rc, const std::string& what) {
  if (rc < 0) throw NetlinkError("failed to build " + what, rc);
}

}  // namespace

std::string HtbClass::str() const {
  return "htb " + tc_handle_str(classid) + " parent " + tc_handle_str(parent) + " dev if" +
         std::to_string(ifindex) + " prio " + std::to_string(prio) + " rate " +
         std::to_string(rate) + "B/s ceil " + std::to_string(ceil) + "B/s buffer " +
         std::to_string(buffer) + "B cbuffer " + std::to_string(cbuffer) + "B quantum " +
         std::to_string(quantum) + "B";
}

void add_htb_class(NlSocket& sock, const HtbClass& c) {
  const std::string what = "class " + c.str();
  if (c.ifindex <= 0) throw std::invalid_argument("a class needs a device index");
  for (uint64_t r : {c.rate, c.ceil}) {
    if (r == 0 || r > kMaxHtbRate) {
      throw std::invalid_argument(what + ": rate " + std::to_string(r) + " B/s is outside 1.." +
                                  std::to_string(kMaxHtbRate));
    }
  }
  RtnlClassPtr obj(rtnl_class_alloc());
  if (!obj) throw std::bad_alloc();
  rtnl_tc* tc = as_tc(obj.get());
  rtnl_tc_set_ifindex(tc, c.ifindex);
  rtnl_tc_set_parent(tc, c.parent);
  rtnl_tc_set_handle(tc, c.classid);
  check(rtnl_tc_set_kind(tc, "htb"), what);
  check(rtnl_htb_set_prio(obj.get(), c.prio), what);
  check(rtnl_htb_set_rate(obj.get(), static_cast<uint32_t>(c.rate)), what);
  check(rtnl_htb_set_ceil(obj.get(), static_cast<uint32_t>(c.ceil)), what);
  if (c.buffer != 0) check(rtnl_htb_set_rbuffer(obj.get(), c.buffer), what);
  if (c.cbuffer != 0) check(rtnl_htb_set_cbuffer(obj.get(), c.cbuffer), what);
  if (c.quantum != 0) check(rtnl_htb_set_quantum(obj.get(), c.quantum), what);
  const int rc = sock.call(
      [&](nl_sock* s) { return rtnl_class_add(s, obj.get(), NLM_F_CREATE | NLM_F_EXCL); });
  if (rc < 0) throw sock.error("failed to add " + what, rc);
}

std::vector<HtbClass> list_htb_classes(NlSocket& sock, int ifindex) {
  NlCachePtr cache =
      sock.dump("failed to list the classes of dev if" + std::to_string(ifindex),
                [&](nl_sock* s, nl_cache** c) { return rtnl_class_alloc_cache(s, ifindex, c); });
  std::vector<HtbClass> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* obj = reinterpret_cast<rtnl_class*>(o);
    rtnl_tc* tc = as_tc(obj);
    const char* kind = rtnl_tc_get_kind(tc);
    if (!kind || std::string(kind) != "htb") continue;
    HtbClass c;
    c.ifindex = rtnl_tc_get_ifindex(tc);
    c.parent = rtnl_tc_get_parent(tc);
    // The kernel dumps a class right under the HTB qdisc with parent TC_H_ROOT; it was added
    // with the qdisc's handle as its parent, which is what comes back here.
    if (c.parent == kTcRoot) c.parent = tc_handle(tc_major(rtnl_tc_get_handle(tc)), 0);
    c.classid = rtnl_tc_get_handle(tc);
    c.prio = rtnl_htb_get_prio(obj);
    uint64_t r = 0;
    if (rtnl_htb_get_rate64(obj, &r) == 0) c.rate = r;
    if (rtnl_htb_get_ceil64(obj, &r) == 0) c.ceil = r;
    c.buffer = rtnl_htb_get_rbuffer(obj);
    c.cbuffer = rtnl_htb_get_cbuffer(obj);
    c.quantum = rtnl_htb_get_quantum(obj);
    out.push_back(c);
  }
  return out;
}

bool same_htb_class(const HtbClass& have, const HtbClass& want) {
  auto close = [](uint32_t a, uint32_t b, uint64_t rate) {
    return (a > b ? a - b : b - a) <= tbf_burst_tolerance(rate);
  };
  return have.ifindex == want.ifindex && have.parent == want.parent &&
         have.classid == want.classid && have.prio == want.prio && have.rate == want.rate &&
         have.ceil == want.ceil && have.quantum == want.quantum &&
         close(have.buffer, want.buffer, want.rate) && close(have.cbuffer, want.cbuffer, want.ceil);
}

}  // namespace cni
