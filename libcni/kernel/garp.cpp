#include "libcni/kernel/garp.h"

#include <arpa/inet.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "libcni/core/fd.h"

namespace cni {

namespace {

[[noreturn]] void fail(int err, const char* what, const IpAddress& ip, std::string_view ifname) {
  throw std::system_error(err, std::system_category(),
                          std::string("failed to send ") + what + " for " + ip.str() + " on \"" +
                              std::string(ifname) + "\"");
}

// Ethernet header + ARP for IPv4 over Ethernet (RFC 826), 42 bytes; drivers pad to 60.
struct __attribute__((packed)) ArpFrame {
  uint8_t eth_dst[6];
  uint8_t eth_src[6];
  uint16_t eth_type;
  uint16_t htype;
  uint16_t ptype;
  uint8_t hlen;
  uint8_t plen;
  uint16_t oper;
  uint8_t sha[6];
  uint8_t spa[4];
  uint8_t tha[6];
  uint8_t tpa[4];
};
static_assert(sizeof(ArpFrame) == 42);

// Neighbor Advertisement + one Target Link-Layer Address option, 32 bytes.
struct __attribute__((packed)) NaPacket {
  nd_neighbor_advert na;
  uint8_t opt_type;
  uint8_t opt_len;  // in units of 8 bytes
  uint8_t opt_mac[6];
};
static_assert(sizeof(NaPacket) == 32);

}  // namespace

void send_gratuitous_arp(int ifindex, std::string_view ifname, const MacAddress& mac,
                         const IpAddress& ip) {
  if (!ip.is_v4()) throw std::invalid_argument("gratuitous ARP needs an IPv4 address");
  constexpr const char* kWhat = "gratuitous ARP";
  UniqueFd fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));  // protocol 0: send only
  if (!fd) fail(errno, kWhat, ip, ifname);

  const MacAddress bcast = MacAddress::broadcast();
  ArpFrame f{};
  std::memcpy(f.eth_dst, bcast.data(), 6);
  std::memcpy(f.eth_src, mac.data(), 6);
  f.eth_type = htons(ETH_P_ARP);
  f.htype = htons(ARPHRD_ETHER);
  f.ptype = htons(ETH_P_IP);
  f.hlen = 6;
  f.plen = 4;
  f.oper = htons(ARPOP_REQUEST);
  std::memcpy(f.sha, mac.data(), 6);
  std::memcpy(f.spa, ip.data(), 4);
  // tha stays zero (RFC 5227 2.3); tpa = spa makes it gratuitous.
  std::memcpy(f.tpa, ip.data(), 4);

  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, bcast.data(), 6);
  if (sendto(fd.get(), &f, sizeof f, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
    fail(errno, kWhat, ip, ifname);
  }
}

void send_unsolicited_na(int ifindex, std::string_view ifname, const MacAddress& mac,
                         const IpAddress& ip) {
  if (!ip.is_v6()) throw std::invalid_argument("unsolicited NA needs an IPv6 address");
  constexpr const char* kWhat = "unsolicited neighbor advertisement";
  UniqueFd fd(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
  if (!fd) fail(errno, kWhat, ip, ifname);

  // Receivers drop neighbor discovery packets whose hop limit is not 255 (RFC 4861 7.1.2).
  const int hops = 255;
  if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) != 0 ||
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex) != 0) {
    fail(errno, kWhat, ip, ifname);
  }
  // Send from the announced address itself when it is usable; while it is still tentative
  // (DAD) the kernel refuses that, and then picks the source (usually the link-local one).
  sockaddr_in6 from{};
  from.sin6_family = AF_INET6;
  std::memcpy(&from.sin6_addr, ip.data(), 16);
  if (IN6_IS_ADDR_LINKLOCAL(&from.sin6_addr)) from.sin6_scope_id = static_cast<uint32_t>(ifindex);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0 &&
      errno != EADDRNOTAVAIL) {
    fail(errno, kWhat, ip, ifname);
  }

  NaPacket p{};
  p.na.nd_na_type = ND_NEIGHBOR_ADVERT;
  p.na.nd_na_code = 0;
  p.na.nd_na_cksum = 0;  // the kernel fills in ICMPv6 checksums on raw sockets
  p.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  std::memcpy(&p.na.nd_na_target, ip.data(), 16);
  p.opt_type = ND_OPT_TARGET_LINKADDR;
  p.opt_len = 1;
  std::memcpy(p.opt_mac, mac.data(), 6);

  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = static_cast<uint32_t>(ifindex);
  if (sendto(fd.get(), &p, sizeof p, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
    fail(errno, kWhat, ip, ifname);
  }
}

void announce_address(int ifindex, std::string_view ifname, const MacAddress& mac,
                      const IpAddress& ip) {
  if (ip.is_v4()) {
    send_gratuitous_arp(ifindex, ifname, mac, ip);
  } else {
    send_unsolicited_na(ifindex, ifname, mac, ip);
  }
}

}  // namespace cni
