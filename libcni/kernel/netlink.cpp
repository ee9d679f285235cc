#include "libcni/kernel/netlink.h"

#include <linux/netlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "libcni/kernel/netns.h"

namespace cni {

namespace {

class NetlinkCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "netlink"; }
  std::string message(int code) const override { return nl_geterror(code); }
};

}  // namespace

const std::error_category& netlink_category() {
  static const NetlinkCategory category;
  return category;
}

int nl_error_to_errno(int nl_error) {
  switch (nl_error < 0 ? -nl_error : nl_error) {
    case NLE_INTR:
      return EINTR;
    case NLE_BAD_SOCK:
      return EBADF;
    case NLE_AGAIN:
      return EAGAIN;
    case NLE_NOMEM:
      return ENOMEM;
    case NLE_EXIST:
      return EEXIST;
    case NLE_INVAL:
      return EINVAL;
    case NLE_RANGE:
      return ERANGE;
    case NLE_MSGSIZE:
      return EMSGSIZE;
    case NLE_OPNOTSUPP:
      return EOPNOTSUPP;
    case NLE_AF_NOSUPPORT:
      return EAFNOSUPPORT;
    case NLE_OBJ_NOTFOUND:
      return ENOENT;
    case NLE_NOADDR:
      return EADDRNOTAVAIL;
    case NLE_BUSY:
      return EBUSY;
    case NLE_PROTO_MISMATCH:
      return EPROTONOSUPPORT;
    case NLE_NOACCESS:
      return EACCES;
    case NLE_PERM:
      return EPERM;
    case NLE_NODEV:
      return ENODEV;
    default:
      return 0;
  }
}

namespace {

std::error_code make_code(int nl_error, int sys_errno) {
  if (sys_errno == 0) sys_errno = nl_error_to_errno(nl_error);
  if (sys_errno != 0) return {sys_errno, std::system_category()};
  return {nl_error < 0 ? -nl_error : nl_error, netlink_category()};
}

}  // namespace

NetlinkError::NetlinkError(const std::string& what, int nl_error, int sys_errno,
                           std::string kernel_message)
    : std::system_error(make_code(nl_error, sys_errno), what),
      nl_error_(nl_error < 0 ? -nl_error : nl_error),
      kernel_message_(std::move(kernel_message)) {
  what_ = what + ": " + code().message();
  if (!kernel_message_.empty()) what_ += " (" + kernel_message_ + ")";
}

void NlDeleter::operator()(nl_addr* p) const noexcept { nl_addr_put(p); }
void NlDeleter::operator()(nl_cache* p) const noexcept { nl_cache_free(p); }
void NlDeleter::operator()(nl_cb* p) const noexcept { nl_cb_put(p); }
void NlDeleter::operator()(nl_msg* p) const noexcept { nlmsg_free(p); }
void NlDeleter::operator()(nl_sock* p) const noexcept { nl_socket_free(p); }
void NlDeleter::operator()(rtnl_act* p) const noexcept { rtnl_act_put(p); }
void NlDeleter::operator()(rtnl_addr* p) const noexcept { rtnl_addr_put(p); }
void NlDeleter::operator()(rtnl_cls* p) const noexcept { rtnl_cls_put(p); }
void NlDeleter::operator()(rtnl_link* p) const noexcept { rtnl_link_put(p); }
void NlDeleter::operator()(rtnl_neigh* p) const noexcept { rtnl_neigh_put(p); }
void NlDeleter::operator()(rtnl_nexthop* p) const noexcept { rtnl_route_nh_free(p); }
void NlDeleter::operator()(rtnl_qdisc* p) const noexcept { rtnl_qdisc_put(p); }
void NlDeleter::operator()(rtnl_route* p) const noexcept { rtnl_route_put(p); }

NlAddrPtr to_nl_addr(const IpAddress& ip) {
  if (ip.family() == 0) throw std::invalid_argument("cannot convert an empty IP address");
  NlAddrPtr a(nl_addr_build(ip.family(), ip.data(), ip.size()));
  if (!a) throw std::bad_alloc();
  nl_addr_set_prefixlen(a.get(), ip.bits());
  return a;
}

NlAddrPtr to_nl_addr(const IpNet& net) {
  NlAddrPtr a = to_nl_addr(net.ip);
  nl_addr_set_prefixlen(a.get(), net.prefix);
  return a;
}

std::optional<IpAddress> from_nl_addr(const nl_addr* addr) {
  if (!addr) return std::nullopt;
  const int family = nl_addr_get_family(addr);
  const size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
  if (want == 0) return std::nullopt;
  const size_t len = nl_addr_get_len(addr);
  if (len == 0) {
    static constexpr uint8_t kZero[16] = {};
    return IpAddress::from_bytes(family, kZero);
  }
  if (len != want) return std::nullopt;
  return IpAddress::from_bytes(family, nl_addr_get_binary_addr(addr));
}

std::optional<IpNet> ipnet_from_nl_addr(const nl_addr* addr) {
  auto ip = from_nl_addr(addr);
  if (!ip) return std::nullopt;
  return IpNet{*ip, static_cast<int>(nl_addr_get_prefixlen(addr))};
}

// ---- NlMessage ----

namespace {
[[noreturn]] void throw_build_error(int rc) {
  throw NetlinkError("failed to build netlink message", rc);
}
}  // namespace

NlMessage::NlMessage(int type, int flags) : msg_(nlmsg_alloc_simple(type, flags)) {
  if (!msg_) throw std::bad_alloc();
}

void NlMessage::append(const void* data, size_t len) {
  if (int rc = nlmsg_append(msg_.get(), const_cast<void*>(data), len, NLMSG_ALIGNTO); rc < 0) {
    throw_build_error(rc);
  }
}

void NlMessage::put(int attr, const void* data, size_t len) {
  if (int rc = nla_put(msg_.get(), attr, static_cast<int>(len), data); rc < 0)
    throw_build_error(rc);
}

void NlMessage::put_string(int attr, std::string_view s) {
  std::string copy(s);  // NUL-terminated
  put(attr, copy.c_str(), copy.size() + 1);
}

void NlMessage::nest(int attr, const std::function<void()>& body) {
  nlattr* start = nla_nest_start(msg_.get(), attr);
  if (!start) throw_build_error(-NLE_NOMEM);
  body();
  if (int rc = nla_nest_end(msg_.get(), start); rc < 0) throw_build_error(rc);
}

// ---- NlSocket ----

// What the kernel said about the last failed request.
struct NlSocket::ErrorState {
  int sys_errno = 0;
  std::string ext_ack;
  void reset() {
    sys_errno = 0;
    ext_ack.clear();
  }
};

namespace {

// The NLMSGERR_ATTR_MSG string of an error message sent with NLM_F_ACK_TLVS.
std::string extack_message(const nlmsgerr* err) {
  // libnl hands the callback nlmsg_data(hdr); the header sits just before it.
  const auto* base = reinterpret_cast<const char*>(err);
  const auto* hdr = reinterpret_cast<const nlmsghdr*>(base - NLMSG_HDRLEN);
  if (hdr->nlmsg_type != NLMSG_ERROR || !(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  size_t offset = sizeof(nlmsgerr);
  if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - NLMSG_HDRLEN;
  offset = NLA_ALIGN(offset);
  const size_t payload = hdr->nlmsg_len - NLMSG_HDRLEN;
  if (offset >= payload) return {};
  auto* attrs = reinterpret_cast<nlattr*>(const_cast<char*>(base) + offset);
  nlattr* msg = nla_find(attrs, static_cast<int>(payload - offset), NLMSGERR_ATTR_MSG);
  if (!msg || nla_len(msg) <= 0) return {};
  const auto* text = static_cast<const char*>(nla_data(msg));
  return std::string(text, strnlen(text, static_cast<size_t>(nla_len(msg))));
}

int on_error(sockaddr_nl*, nlmsgerr* err, void* arg) {
  auto* state = static_cast<NlSocket::ErrorState*>(arg);
  state->sys_errno = err->error < 0 ? -err->error : err->error;
  state->ext_ack = extack_message(err);
  return NL_STOP;  // libnl then returns the NLE_* code of this errno
}

}  // namespace

NlSocket::NlSocket(int protocol) : sock_(nl_socket_alloc()), err_(std::make_unique<ErrorState>()) {
  if (!sock_) throw std::bad_alloc();
  if (int rc = nl_connect(sock_.get(), protocol); rc < 0) {
    throw NetlinkError("failed to open netlink socket", rc, errno);
  }
  // Ask for the kernel's explanation of errors, and for short acks. Old kernels refuse
  // the options; errors then just lack the explanation.
  const int one = 1;
  const int fd = nl_socket_get_fd(sock_.get());
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  nl_socket_modify_err_cb(sock_.get(), NL_CB_CUSTOM, on_error, err_.get());
}

NlSocket NlSocket::in(const Netns& ns, int protocol) {
  NetnsGuard guard(ns);
  return NlSocket(protocol);
}

NlSocket::~NlSocket() = default;
NlSocket::NlSocket(NlSocket&&) noexcept = default;
NlSocket& NlSocket::operator=(NlSocket&&) noexcept = default;

void NlSocket::request(NlMessage& msg, const std::string& what) {
  err_->reset();
  int rc = nl_send_auto(sock_.get(), msg.get());
  if (rc >= 0) rc = nl_wait_for_ack(sock_.get());
  if (rc < 0) throw error(what, rc);
}

NlCachePtr NlSocket::dump(const std::string& what,
                          const std::function<int(nl_sock*, nl_cache**)>& alloc) {
  nl_cache* cache = nullptr;
  err_->reset();
  const int rc = alloc(sock_.get(), &cache);
  if (rc < 0) throw error(what, rc);
  return NlCachePtr(cache);
}

int NlSocket::call(const std::function<int(nl_sock*)>& fn) {
  err_->reset();
  return fn(sock_.get());
}

NetlinkError NlSocket::error(const std::string& what, int rc) const {
  return NetlinkError(what, rc, err_->sys_errno, err_->ext_ack);
}

namespace {

// What the callbacks of one request with replies share. An exception of `on_reply` must not
// unwind through libnl (C): it is kept, the remaining replies and the ack are still read (so
// the next request on the socket does not find a stale ack), and rethrown after.
struct ReplyState {
  const std::function<void(const nlmsghdr*)>* on_reply;
  std::exception_ptr failure;
  bool acked = false;
};

int on_valid(nl_msg* msg, void* arg) {
  auto* state = static_cast<ReplyState*>(arg);
  if (state->failure) return NL_SKIP;
  try {
    (*state->on_reply)(nlmsg_hdr(msg));
  } catch (...) {
    state->failure = std::current_exception();
  }
  return NL_OK;
}

int on_ack(nl_msg*, void* arg) {
  static_cast<ReplyState*>(arg)->acked = true;
  return NL_STOP;
}

}  // namespace

void NlSocket::request(NlMessage& msg, const std::string& what,
                       const std::function<void(const nlmsghdr*)>& on_reply) {
  // A copy of the socket's callbacks (which carry on_error) with ours added.
  const NlPtr<nl_cb> socket_cb(nl_socket_get_cb(sock_.get()));  // a reference of our own
  NlPtr<nl_cb> cb(nl_cb_clone(socket_cb.get()));
  if (!cb) throw std::bad_alloc();
  ReplyState state{&on_reply, nullptr, false};
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &state);
  nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &state);
  err_->reset();
  int rc = nl_send_auto(sock_.get(), msg.get());
  // A reply for one object comes without NLM_F_MULTI, so nl_recvmsgs returns after it; the
  // ack follows.
  while (rc >= 0 && !state.acked) rc = nl_recvmsgs(sock_.get(), cb.get());
  if (rc < 0) throw error(what, rc);
  if (state.failure) std::rethrow_exception(state.failure);
}

}  // namespace cni
