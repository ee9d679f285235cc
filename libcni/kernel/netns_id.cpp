#include "libcni/kernel/netns_id.h"

#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <memory>

namespace cni {

namespace {

struct CbDeleter {
  void operator()(nl_cb* cb) const noexcept { nl_cb_put(cb); }
};

struct Reply {
  bool seen = false;
  int32_t id = NETNSA_NSID_NOT_ASSIGNED;
};

int on_reply(nl_msg* msg, void* arg) {
  auto* reply = static_cast<Reply*>(arg);
  nlattr* tb[NETNSA_MAX + 1] = {};
  if (nlmsg_parse(nlmsg_hdr(msg), sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 &&
      tb[NETNSA_NSID]) {
    reply->id = static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID]));
  }
  reply->seen = true;
  return NL_STOP;
}

}  // namespace

std::optional<int32_t> netns_id(NlSocket& sock, const Netns& other) {
  NlMessage msg(RTM_GETNSID, 0);
  rtgenmsg hdr{};
  hdr.rtgen_family = AF_UNSPEC;
  msg.put_header(hdr);
  msg.put_u32(NETNSA_FD, static_cast<uint32_t>(other.fd()));
  Reply reply;
  const int rc = sock.call([&](nl_sock* s) {
    std::unique_ptr<nl_cb, CbDeleter> cb(nl_cb_clone(nl_socket_get_cb(s)));
    if (!cb) return -NLE_NOMEM;
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_reply, &reply);
    int r = nl_send_auto(s, msg.get());
    if (r < 0) return r;
    // The answer (RTM_NEWNSID), then the ack the request asked for.
    while (!reply.seen) {
      r = nl_recvmsgs(s, cb.get());
      if (r < 0) return r;
    }
    return nl_wait_for_ack(s);
  });
  if (rc < 0) throw sock.error("failed to get the id of netns \"" + other.path() + "\"", rc);
  if (reply.id == NETNSA_NSID_NOT_ASSIGNED) return std::nullopt;
  return reply.id;
}

}  // namespace cni
