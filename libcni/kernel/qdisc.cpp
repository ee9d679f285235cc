#include "libcni/kernel/qdisc.h"

#include <linux/netlink.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/fifo.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>

namespace cni {

std::string tc_handle_str(uint32_t handle) {
  if (handle == kTcRoot) return "root";
  if (handle == kTcIngressParent) return "ingress";
  char buf[24];
  if (tc_minor(handle) == 0) {
    std::snprintf(buf, sizeof buf, "%x:", tc_major(handle));
  } else {
    std::snprintf(buf, sizeof buf, "%x:%x", tc_major(handle), tc_minor(handle));
  }
  return buf;
}

std::string Qdisc::str() const {
  std::string s = kind + " " + tc_handle_str(handle);
  s += parent == kTcRoot || parent == kTcIngressParent ? " " + tc_handle_str(parent)
                                                       : " parent " + tc_handle_str(parent);
  s += " dev if" + std::to_string(ifindex);
  if (tbf) {
    s += " rate " + std::to_string(tbf->rate) + "B/s burst " + std::to_string(tbf->burst) +
         "B limit " + std::to_string(tbf->limit) + "B";
    if (tbf->peakrate != 0) {
      s += " peakrate " + std::to_string(tbf->peakrate) + "B/s mtu " + std::to_string(tbf->mtu) +
           "B";
    }
  }
  if (htb_default) s += " default " + std::to_string(*htb_default);
  if (fifo_limit) s += " limit " + std::to_string(*fifo_limit) + "B";
  return s;
}

Qdisc tbf_qdisc(int ifindex, const TbfParams& params, uint32_t handle, uint32_t parent) {
  return {.ifindex = ifindex, .handle = handle, .parent = parent, .kind = "tbf", .tbf = params};
}

Qdisc ingress_qdisc(int ifindex) {
  return {.ifindex = ifindex,
          .handle = kTcIngressHandle,
          .parent = kTcIngressParent,
          .kind = "ingress",
          .tbf = std::nullopt};
}

namespace {

Qdisc qdisc_of(const char* kind, int ifindex, uint32_t handle, uint32_t parent) {
  Qdisc q;
  q.ifindex = ifindex;
  q.handle = handle;
  q.parent = parent;
  q.kind = kind;
  return q;
}

}  // namespace

Qdisc htb_qdisc(int ifindex, uint32_t handle, uint32_t parent, uint32_t default_minor) {
  Qdisc q = qdisc_of("htb", ifindex, handle, parent);
  q.htb_default = default_minor;
  return q;
}

Qdisc bfifo_qdisc(int ifindex, uint32_t handle, uint32_t parent, uint32_t limit) {
  Qdisc q = qdisc_of("bfifo", ifindex, handle, parent);
  q.fifo_limit = limit;
  return q;
}

Qdisc clsact_qdisc(int ifindex) {
  Qdisc q = ingress_qdisc(ifindex);
  q.kind = "clsact";
  return q;
}

namespace {

rtnl_tc* as_tc(rtnl_qdisc* q) { return reinterpret_cast<rtnl_tc*>(q); }

// The libnl object of `q`. The kind comes first: libnl allocates a kind's private data (the
// tbf parameters) when the kind is set.
RtnlQdiscPtr build(const Qdisc& q, bool with_kind) {
  if (q.ifindex <= 0) throw std::invalid_argument("a qdisc needs a device index");
  RtnlQdiscPtr obj(rtnl_qdisc_alloc());
  if (!obj) throw std::bad_alloc();
  rtnl_tc* tc = as_tc(obj.get());
  rtnl_tc_set_ifindex(tc, q.ifindex);
  rtnl_tc_set_parent(tc, q.parent);
  if (q.handle != 0) rtnl_tc_set_handle(tc, q.handle);
  if (!with_kind) return obj;
  if (int rc = rtnl_tc_set_kind(tc, q.kind.c_str()); rc < 0) {
    throw NetlinkError("failed to build qdisc " + q.str(), rc);
  }
  if (q.htb_default) {
    if (q.kind != "htb") throw std::invalid_argument("an HTB default on a " + q.kind + " qdisc");
    if (int rc = rtnl_htb_set_defcls(obj.get(), *q.htb_default); rc < 0) {
      throw NetlinkError("failed to build qdisc " + q.str(), rc);
    }
  }
  if (q.fifo_limit) {
    if (q.kind != "bfifo") throw std::invalid_argument("a fifo limit on a " + q.kind + " qdisc");
    if (int rc = rtnl_qdisc_fifo_set_limit(obj.get(), static_cast<int>(*q.fifo_limit)); rc < 0) {
      throw NetlinkError("failed to build qdisc " + q.str(), rc);
    }
  }
  if (q.tbf) {
    if (q.kind != "tbf") throw std::invalid_argument("tbf parameters on a " + q.kind + " qdisc");
    if (q.tbf->rate == 0 || q.tbf->rate > kMaxTbfRate) {
      throw std::invalid_argument("tbf rate " + std::to_string(q.tbf->rate) +
                                  " B/s is outside 1.." + std::to_string(kMaxTbfRate));
    }
    rtnl_qdisc_tbf_set_limit(obj.get(), static_cast<int>(q.tbf->limit));
    // libnl takes the rate as an int and stores (uint32_t)rate: the conversion through int
    // is modular (C++20), so every 32-bit rate arrives intact.
    rtnl_qdisc_tbf_set_rate(obj.get(), static_cast<int>(static_cast<uint32_t>(q.tbf->rate)),
                            static_cast<int>(q.tbf->burst), 0);
    if (q.tbf->peakrate != 0) {
      if (q.tbf->peakrate <= q.tbf->rate || q.tbf->peakrate > kMaxTbfRate || q.tbf->mtu == 0) {
        throw std::invalid_argument("tbf peak rate " + std::to_string(q.tbf->peakrate) +
                                    " B/s must be above the rate, at most " +
                                    std::to_string(kMaxTbfRate) + ", with a peak bucket");
      }
      // The cell size of the peak rate's table: libnl derives none for it (cell_log 0, which
      // the kernel refuses); 8 bytes is what tc picks for a 1500-byte MTU.
      if (int rc = rtnl_qdisc_tbf_set_peakrate(
              obj.get(), static_cast<int>(static_cast<uint32_t>(q.tbf->peakrate)),
              static_cast<int>(q.tbf->mtu), 8);
          rc < 0) {
        throw NetlinkError("failed to build qdisc " + q.str(), rc);
      }
    }
  }
  return obj;
}

void send_add(NlSocket& sock, const Qdisc& q, int flags, const std::string& verb) {
  RtnlQdiscPtr obj = build(q, true);
  const int rc = sock.call([&](nl_sock* s) { return rtnl_qdisc_add(s, obj.get(), flags); });
  if (rc < 0) throw sock.error("failed to " + verb + " qdisc " + q.str(), rc);
}

Qdisc from_libnl(rtnl_qdisc* obj) {
  rtnl_tc* tc = as_tc(obj);
  Qdisc q;
  q.ifindex = rtnl_tc_get_ifindex(tc);
  q.handle = rtnl_tc_get_handle(tc);
  q.parent = rtnl_tc_get_parent(tc);
  if (const char* kind = rtnl_tc_get_kind(tc)) q.kind = kind;
  if (q.kind == "tbf") {
    TbfParams p;
    p.rate = static_cast<uint32_t>(rtnl_qdisc_tbf_get_rate(obj));
    p.burst = static_cast<uint32_t>(rtnl_qdisc_tbf_get_rate_bucket(obj));
    p.limit = static_cast<uint32_t>(rtnl_qdisc_tbf_get_limit(obj));
    // libnl marks the peak rate present in every dump; a tbf without one reads 0.
    if (int peak = rtnl_qdisc_tbf_get_peakrate(obj); peak != 0 && peak != -1) {
      p.peakrate = static_cast<uint32_t>(peak);
      p.mtu = static_cast<uint32_t>(rtnl_qdisc_tbf_get_peakrate_bucket(obj));
    }
    q.tbf = p;
  }
  if (q.kind == "htb") q.htb_default = rtnl_htb_get_defcls(obj);
  if (q.kind == "bfifo") q.fifo_limit = static_cast<uint32_t>(rtnl_qdisc_fifo_get_limit(obj));
  return q;
}

}  // namespace

void add_qdisc(NlSocket& sock, const Qdisc& qdisc) {
  send_add(sock, qdisc, NLM_F_CREATE | NLM_F_EXCL, "add");
}

void replace_qdisc(NlSocket& sock, const Qdisc& qdisc) {
  send_add(sock, qdisc, NLM_F_CREATE | NLM_F_REPLACE, "replace");
}

void delete_qdisc(NlSocket& sock, int ifindex, uint32_t parent) {
  // No kind and no handle: the kernel deletes whatever sits at `parent`.
  Qdisc q{.ifindex = ifindex, .handle = 0, .parent = parent, .kind = "", .tbf = std::nullopt};
  RtnlQdiscPtr obj = build(q, false);
  const int rc = sock.call([&](nl_sock* s) { return rtnl_qdisc_delete(s, obj.get()); });
  if (rc < 0) {
    throw sock.error("failed to delete the " + tc_handle_str(parent) + " qdisc of dev if" +
                         std::to_string(ifindex),
                     rc);
  }
}

bool delete_qdisc_if_exists(NlSocket& sock, int ifindex, uint32_t parent) {
  try {
    delete_qdisc(sock, ifindex, parent);
    return true;
  } catch (const NetlinkError& e) {
    // ENOENT: nothing there (or the default root); ENODEV: the device is gone.
    if (e.sys_errno() == ENOENT || e.sys_errno() == ENODEV) return false;
    throw;
  }
}

std::vector<Qdisc> list_qdiscs(NlSocket& sock, int ifindex) {
  NlCachePtr cache = sock.dump("failed to list qdiscs", [](nl_sock* s, nl_cache** c) {
    return rtnl_qdisc_alloc_cache(s, c);
  });
  std::vector<Qdisc> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    Qdisc q = from_libnl(reinterpret_cast<rtnl_qdisc*>(o));
    if (ifindex <= 0 || q.ifindex == ifindex) out.push_back(std::move(q));
  }
  return out;
}

std::optional<Qdisc> find_qdisc(NlSocket& sock, int ifindex, uint32_t parent) {
  for (Qdisc& q : list_qdiscs(sock, ifindex)) {
    if (q.parent == parent && q.handle != 0) return std::move(q);
  }
  return std::nullopt;
}

uint32_t tbf_burst_tolerance(uint64_t rate) {
  // Written: floor(µs) of the bucket's send time; read: floor(µs of the ticks) * rate. Each
  // floor loses up to one microsecond's worth of bytes, and each conversion one byte.
  return static_cast<uint32_t>(2 * (rate / 1000000 + 1));
}

bool same_tbf(const TbfParams& have, const TbfParams& want) {
  auto close = [](uint32_t a, uint32_t b, uint64_t rate) {
    return (a > b ? a - b : b - a) <= tbf_burst_tolerance(rate);
  };
  return have.rate == want.rate && have.limit == want.limit && have.peakrate == want.peakrate &&
         close(have.burst, want.burst, want.rate) &&
         (want.peakrate == 0 || close(have.mtu, want.mtu, want.peakrate));
}

}  // namespace cni
