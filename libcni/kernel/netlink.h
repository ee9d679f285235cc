#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "libcni/core/ip.h"

// libnl types, complete in <netlink/...> and <netlink/route/...>.
struct nl_addr;
struct nl_cache;
struct nl_cb;
struct nl_msg;
struct nl_sock;
struct rtnl_act;
struct rtnl_addr;
struct rtnl_cls;
struct rtnl_link;
struct rtnl_neigh;
struct rtnl_nexthop;
struct rtnl_qdisc;
struct rtnl_route;
struct nlmsghdr;

namespace cni {

class Netns;

// The error category of libnl's own codes (NLE_*), for failures that have no errno: a
// truncated message, a parse error, an inconsistent dump. Messages come from nl_geterror.
const std::error_category& netlink_category();

// The errno matching a libnl code (either sign), or 0 when there is none.
int nl_error_to_errno(int nl_error);

// A failed netlink request. code() is the kernel's errno (system_category) when there is
// one, else the libnl code in netlink_category(). what() names the operation and object:
//   failed to add route 10.1.0.0/27 via 192.0.2.2 dev eth0: Network is unreachable
// followed by the kernel's extended-ack text in parentheses when it sent one.
class NetlinkError : public std::system_error {
 public:
  // `nl_error` is libnl's code (either sign); `sys_errno` the kernel's errno when known
  // (0: derived from nl_error).
  NetlinkError(const std::string& what, int nl_error, int sys_errno = 0,
               std::string kernel_message = {});

  const char* what() const noexcept override { return what_.c_str(); }
  int nl_error() const { return nl_error_; }  // positive NLE_*
  // The errno of the failure, 0 if it has none: compare with ENODEV, EEXIST, ...
  int sys_errno() const { return code().category() == std::system_category() ? code().value() : 0; }
  const std::string& kernel_message() const { return kernel_message_; }

 private:
  int nl_error_;
  std::string kernel_message_;
  std::string what_;
};

// unique_ptr deleters for libnl objects (nl_object_put, nl_addr_put, ...).
struct NlDeleter {
  void operator()(nl_addr* p) const noexcept;
  void operator()(nl_cache* p) const noexcept;
  void operator()(nl_cb* p) const noexcept;
  void operator()(nl_msg* p) const noexcept;
  void operator()(nl_sock* p) const noexcept;
  void operator()(rtnl_act* p) const noexcept;  // one action (not a list)
  void operator()(rtnl_addr* p) const noexcept;
  void operator()(rtnl_cls* p) const noexcept;
  void operator()(rtnl_link* p) const noexcept;
  void operator()(rtnl_neigh* p) const noexcept;
  void operator()(rtnl_nexthop* p) const noexcept;  // one not (yet) handed to a route
  void operator()(rtnl_qdisc* p) const noexcept;
  void operator()(rtnl_route* p) const noexcept;
};
template <class T>
using NlPtr = std::unique_ptr<T, NlDeleter>;
using NlAddrPtr = NlPtr<nl_addr>;
using NlCachePtr = NlPtr<nl_cache>;
using NlMsgPtr = NlPtr<nl_msg>;
using RtnlActPtr = NlPtr<rtnl_act>;
using RtnlAddrPtr = NlPtr<rtnl_addr>;
using RtnlClsPtr = NlPtr<rtnl_cls>;
using RtnlLinkPtr = NlPtr<rtnl_link>;
using RtnlNeighPtr = NlPtr<rtnl_neigh>;
using RtnlNexthopPtr = NlPtr<rtnl_nexthop>;
using RtnlQdiscPtr = NlPtr<rtnl_qdisc>;
using RtnlRoutePtr = NlPtr<rtnl_route>;

// cni::IpAddress / IpNet <-> nl_addr. An address gets its full prefix length.
NlAddrPtr to_nl_addr(const IpAddress& ip);
NlAddrPtr to_nl_addr(const IpNet& net);
// nullopt unless the nl_addr is AF_INET/AF_INET6. A zero-length address (how libnl parses
// a route without RTA_DST) is the family's zero address: 0.0.0.0/0, ::/0.
std::optional<IpAddress> from_nl_addr(const nl_addr* addr);
std::optional<IpNet> ipnet_from_nl_addr(const nl_addr* addr);

// A request being built: an nlmsghdr, the family header (ifinfomsg, rtmsg, ...), then
// attributes. Every put throws NetlinkError if the message is full.
class NlMessage {
 public:
  NlMessage(int type, int flags);  // NLM_F_REQUEST and NLM_F_ACK are added when sent

  template <class Header>
  void put_header(const Header& h) {
    append(&h, sizeof h);
  }
  void append(const void* data, size_t len);  // raw bytes, aligned (also inside a nest)

  void put(int attr, const void* data, size_t len);
  void put_u8(int attr, uint8_t v) { put(attr, &v, sizeof v); }
  void put_u16(int attr, uint16_t v) { put(attr, &v, sizeof v); }
  void put_u32(int attr, uint32_t v) { put(attr, &v, sizeof v); }
  void put_s32(int attr, int32_t v) { put(attr, &v, sizeof v); }
  void put_string(int attr, std::string_view s);  // NUL-terminated
  void put_flag(int attr) { put(attr, nullptr, 0); }
  void put_address(int attr, const IpAddress& ip) { put(attr, ip.data(), ip.size()); }
  // A nested attribute holding whatever `body` puts.
  void nest(int attr, const std::function<void()>& body);

  nl_msg* get() const { return msg_.get(); }

 private:
  NlMsgPtr msg_;
};

// A netlink socket, NETLINK_ROUTE unless another protocol is named (NETLINK_GENERIC for
// devlink). It is bound to the network namespace it was opened in for its
// whole life, whatever the thread does later: a plugin can hold one socket per netns
// (open it inside a NetnsGuard, or with NlSocket::in) and never setns for netlink.
// Failures carry the kernel's errno and extended-ack message (NETLINK_EXT_ACK).
class NlSocket {
 public:
  // In the calling thread's current netns. `protocol` is a NETLINK_* constant (0 is
  // NETLINK_ROUTE).
  explicit NlSocket(int protocol = 0);
  static NlSocket in(const Netns& ns, int protocol = 0);
  ~NlSocket();
  NlSocket(NlSocket&&) noexcept;
  NlSocket& operator=(NlSocket&&) noexcept;
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;

  nl_sock* get() const { return sock_.get(); }

  // Sends `msg` and waits for the kernel's ack; throws NetlinkError(what, ...).
  void request(NlMessage& msg, const std::string& what);
  // Runs a libnl dump through a cache allocator (rtnl_link_alloc_cache, ...); throws
  // NetlinkError(what, ...). A dump the kernel marks interrupted (NLM_F_DUMP_INTR: the table
  // changed underneath, as upstream's pkg/netlinksafe guards against) never comes back as
  // -NLE_DUMP_INTR: every rtnl_*_alloc_cache fills through nl_cache_refill, which requests
  // the dump again until it is consistent (libnl lib/cache.c, "dump interrupted,
  // restarting"). Only cache allocators belong here, so that stays true.
  NlCachePtr dump(const std::string& what, const std::function<int(nl_sock*, nl_cache**)>& alloc);
  // Runs one libnl call that talks to the kernel, returning its result. After a failure,
  // error(what, rc) builds the exception with the errno the kernel sent, if libnl let it
  // through (some libnl calls install their own error handler).
  int call(const std::function<int(nl_sock*)>& fn);
  NetlinkError error(const std::string& what, int rc) const;
  // Sends `msg`, a request for one object (not a dump), and hands each message the kernel
  // answers with to `on_reply` before its ack; throws NetlinkError(what, ...). For what libnl
  // has no cache or accessor for: a link's VF list (IFLA_VFINFO_LIST), generic netlink.
  void request(NlMessage& msg, const std::string& what,
               const std::function<void(const nlmsghdr*)>& on_reply);

  struct ErrorState;  // what the kernel said about the last failure (netlink.cpp)

 private:
  NlPtr<nl_sock> sock_;
  std::unique_ptr<ErrorState> err_;  // heap: libnl's error callback keeps a pointer to it
};

}  // namespace cni
