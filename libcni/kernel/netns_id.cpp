#include "libcni/kernel/netns_id.h"

#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

namespace cni {

std::optional<int32_t> netns_id(NlSocket& sock, const Netns& other) {
  NlMessage msg(RTM_GETNSID, 0);
  rtgenmsg hdr{};
  hdr.rtgen_family = AF_UNSPEC;
  msg.put_header(hdr);
  msg.put_u32(NETNSA_FD, static_cast<uint32_t>(other.fd()));
  // The answer (RTM_NEWNSID), then the ack the request asked for.
  int32_t id = NETNSA_NSID_NOT_ASSIGNED;
  sock.request(
      msg, "failed to get the id of netns \"" + other.path() + "\"", [&id](const nlmsghdr* reply) {
        nlattr* tb[NETNSA_MAX + 1] = {};
        if (nlmsg_parse(const_cast<nlmsghdr*>(reply), sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) ==
                0 &&
            tb[NETNSA_NSID]) {
          id = static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID]));
        }
      });
  if (id == NETNSA_NSID_NOT_ASSIGNED) return std::nullopt;
  return id;
}

}  // namespace cni
