#include "libcni/kernel/vf.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "libcni/kernel/devlink.h"
#include "libcni/kernel/representor.h"

using cni::MacAddress;
using cni::VfInfo;
using cni::VfLinkState;
using cni::VfSettings;

namespace {

// The VF list of one request of vf_requests, parsed back.
std::vector<VfInfo> parse_request(const cni::VfRequest& r) {
  const nlmsghdr* hdr = nlmsg_hdr(r.msg.get());
  REQUIRE(hdr->nlmsg_type == RTM_SETLINK);
  const auto* ifi = static_cast<const ifinfomsg*>(nlmsg_data(hdr));
  CHECK(ifi->ifi_index == 7);
  return cni::parse_link_vf_list(hdr);
}

// An RTM_NEWLINK as the kernel answers a GET with RTEXT_FILTER_VF: one IFLA_VF_INFO per VF
// with every attribute, in the kernel's order (rtnl_fill_vfinfo).
struct KernelVf {
  uint32_t vf;
  MacAddress mac;
  uint32_t vlan, qos;
  uint16_t proto;  // host order
  uint32_t min_rate, max_rate;
  uint32_t spoofchk, trust, link_state;
};

cni::NlMessage kernel_reply(const std::vector<KernelVf>& vfs) {
  cni::NlMessage msg(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = 7;
  msg.put_header(ifi);
  msg.put_string(IFLA_IFNAME, "eth0");
  msg.put_u32(IFLA_NUM_VF, static_cast<uint32_t>(vfs.size()));
  msg.nest(IFLA_VFINFO_LIST, [&] {
    for (const KernelVf& k : vfs) {
      msg.nest(IFLA_VF_INFO, [&] {
        ifla_vf_mac mac{};
        mac.vf = k.vf;
        std::memcpy(mac.mac, k.mac.data(), 6);
        msg.put(IFLA_VF_MAC, &mac, sizeof mac);
        ifla_vf_vlan vlan{k.vf, k.vlan, k.qos};
        msg.put(IFLA_VF_VLAN, &vlan, sizeof vlan);
        ifla_vf_rate rate{k.vf, k.min_rate, k.max_rate};
        msg.put(IFLA_VF_RATE, &rate, sizeof rate);
        ifla_vf_tx_rate tx{k.vf, k.max_rate};
        msg.put(IFLA_VF_TX_RATE, &tx, sizeof tx);
        ifla_vf_spoofchk spoof{k.vf, k.spoofchk};
        msg.put(IFLA_VF_SPOOFCHK, &spoof, sizeof spoof);
        ifla_vf_link_state ls{k.vf, k.link_state};
        msg.put(IFLA_VF_LINK_STATE, &ls, sizeof ls);
        ifla_vf_rss_query_en rss{k.vf, 0};
        msg.put(IFLA_VF_RSS_QUERY_EN, &rss, sizeof rss);
        ifla_vf_trust trust{k.vf, k.trust};
        msg.put(IFLA_VF_TRUST, &trust, sizeof trust);
        msg.nest(IFLA_VF_VLAN_LIST, [&] {
          ifla_vf_vlan_info info{k.vf, k.vlan, k.qos, htons(k.proto)};
          msg.put(IFLA_VF_VLAN_INFO, &info, sizeof info);
        });
      });
    }
  });
  return msg;
}

}  // namespace

TEST_CASE("parse_link_vf_list reads every VF field of a kernel reply", "[vf]") {
  const auto mac1 = MacAddress::parse("02:00:00:00:00:01");
  // VF 1 as netdevsim reports it before any VLAN was set (protocol 0), VF 0 as a driver
  // without spoofchk/trust support reports it (the kernel's preset -1).
  cni::NlMessage reply =
      kernel_reply({{1, mac1, 100, 3, 0x88a8, 10, 1000, 1, 0, IFLA_VF_LINK_STATE_DISABLE},
                    {0, MacAddress(), 0, 0, 0, 0, 0, 0xffffffffu, 0xffffffffu, 0}});
  const auto vfs = cni::parse_link_vf_list(nlmsg_hdr(reply.get()));
  REQUIRE(vfs.size() == 2);
  // Sorted by index.
  CHECK(vfs[0] == VfInfo{.index = 0,
                         .mac = MacAddress(),
                         .vlan = 0,
                         .qos = 0,
                         .vlan_proto = 0,
                         .spoofchk = std::nullopt,
                         .trust = std::nullopt,
                         .min_tx_rate = 0,
                         .max_tx_rate = 0,
                         .link_state = VfLinkState::kAuto});
  CHECK(vfs[1] == VfInfo{.index = 1,
                         .mac = mac1,
                         .vlan = 100,
                         .qos = 3,
                         .vlan_proto = cni::kVlanProto8021AD,
                         .spoofchk = true,
                         .trust = false,
                         .min_tx_rate = 10,
                         .max_tx_rate = 1000,
                         .link_state = VfLinkState::kDisable});
}

TEST_CASE("parse_link_vf_list: a device without VFs has an empty list", "[vf]") {
  cni::NlMessage msg(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  msg.put_header(ifi);
  msg.put_string(IFLA_IFNAME, "veth0");
  CHECK(cni::parse_link_vf_list(nlmsg_hdr(msg.get())).empty());
}

TEST_CASE("parse_vf_list refuses truncated or anonymous entries", "[vf]") {
  SECTION("a truncated struct") {
    cni::NlMessage msg(RTM_NEWLINK, 0);
    msg.put_header(ifinfomsg{});
    msg.nest(IFLA_VFINFO_LIST, [&] {
      msg.nest(IFLA_VF_INFO, [&] {
        uint32_t vf = 0;
        msg.put(IFLA_VF_MAC, &vf, sizeof vf);
      });
    });
    CHECK_THROWS_WITH(cni::parse_link_vf_list(nlmsg_hdr(msg.get())),
                      Catch::Contains("IFLA_VF_MAC is 4 bytes"));
  }
  SECTION("an entry naming no VF") {
    cni::NlMessage msg(RTM_NEWLINK, 0);
    msg.put_header(ifinfomsg{});
    // Only an attribute the parser does not read (libnl drops an empty nest).
    msg.nest(IFLA_VFINFO_LIST, [&] { msg.nest(IFLA_VF_INFO, [&] { msg.put_u32(99, 0); }); });
    CHECK_THROWS_WITH(cni::parse_link_vf_list(nlmsg_hdr(msg.get())),
                      Catch::Contains("names no VF"));
  }
  SECTION("an entry naming two VFs") {
    cni::NlMessage msg(RTM_NEWLINK, 0);
    msg.put_header(ifinfomsg{});
    msg.nest(IFLA_VFINFO_LIST, [&] {
      msg.nest(IFLA_VF_INFO, [&] {
        ifla_vf_spoofchk a{1, 1};
        ifla_vf_trust b{2, 1};
        msg.put(IFLA_VF_SPOOFCHK, &a, sizeof a);
        msg.put(IFLA_VF_TRUST, &b, sizeof b);
      });
    });
    CHECK_THROWS_WITH(cni::parse_link_vf_list(nlmsg_hdr(msg.get())),
                      Catch::Contains("names VFs 1 and 2"));
  }
}

TEST_CASE("vf_requests: one RTM_SETLINK per setting, in sriov-cni's order, each naming it",
          "[vf]") {
  const auto mac = MacAddress::parse("02:11:22:33:44:55");
  VfSettings all{.mac = mac,
                 .vlan = cni::VfVlan{.vlan = 100, .qos = 5, .proto = cni::kVlanProto8021AD},
                 .rate = cni::VfRate{.min_tx_rate = 100, .max_tx_rate = 2000},
                 .spoofchk = false,
                 .trust = true,
                 .link_state = VfLinkState::kEnable};
  const auto requests = cni::vf_requests(7, 3, all);
  REQUIRE(requests.size() == 6);
  const std::string of = " of VF 3 of PF index 7";
  CHECK(requests[0].what == "failed to set vlan 100 qos 5 proto 802.1ad" + of);
  CHECK(requests[1].what == "failed to set MAC 02:11:22:33:44:55" + of);
  CHECK(requests[2].what == "failed to set min_tx_rate 100 Mbps, max_tx_rate 2000 Mbps" + of);
  CHECK(requests[3].what == "failed to set spoofchk off" + of);
  CHECK(requests[4].what == "failed to set trust on" + of);
  CHECK(requests[5].what == "failed to set link state enable" + of);

  // Each carries exactly its setting for VF 3, as the parser of replies reads it.
  std::vector<VfInfo> parsed;
  for (const auto& r : requests) {
    auto vfs = parse_request(r);
    REQUIRE(vfs.size() == 1);
    CHECK(vfs[0].index == 3);
    parsed.push_back(vfs[0]);
  }
  CHECK(parsed[0].vlan == 100);
  CHECK(parsed[0].qos == 5);
  CHECK(parsed[0].vlan_proto == cni::kVlanProto8021AD);
  CHECK(parsed[1].mac == mac);
  CHECK(parsed[2].min_tx_rate == 100);
  CHECK(parsed[2].max_tx_rate == 2000);
  CHECK(parsed[3].spoofchk == false);
  CHECK(parsed[3].trust == std::nullopt);
  CHECK(parsed[4].trust == true);
  CHECK(parsed[5].link_state == VfLinkState::kEnable);

  // Only what is set is sent; a PF named by name is addressed by IFLA_IFNAME.
  const auto one = cni::vf_requests("eth0", 0, VfSettings{.trust = false});
  REQUIRE(one.size() == 1);
  CHECK(one[0].what == "failed to set trust off of VF 0 of PF \"eth0\"");
  CHECK(cni::vf_requests(7, 0, VfSettings{}).empty());
  CHECK(VfSettings{}.empty());
  CHECK_FALSE(VfSettings{.spoofchk = true}.empty());
}

TEST_CASE("VF names: link states, VLAN protocols, eswitch modes", "[vf]") {
  CHECK(cni::parse_vf_link_state("auto") == VfLinkState::kAuto);
  CHECK(cni::parse_vf_link_state("enable") == VfLinkState::kEnable);
  CHECK(cni::parse_vf_link_state("disable") == VfLinkState::kDisable);
  CHECK(cni::parse_vf_link_state("Enable") == std::nullopt);
  CHECK(cni::to_string(VfLinkState::kDisable) == "disable");
  CHECK(cni::vlan_proto_name(0x8100) == "802.1Q");
  CHECK(cni::vlan_proto_name(0x88a8) == "802.1ad");
  CHECK(cni::vlan_proto_name(0) == "0x0000");
  CHECK(cni::parse_eswitch_mode("switchdev") == cni::EswitchMode::kSwitchdev);
  CHECK(cni::parse_eswitch_mode("legacy") == cni::EswitchMode::kLegacy);
  CHECK(cni::parse_eswitch_mode("offload") == std::nullopt);
  CHECK(cni::to_string(cni::EswitchMode::kSwitchdev) == "switchdev");
  CHECK((cni::DevlinkHandle{"pci", "0000:04:00.0"}).str() == "pci/0000:04:00.0");
}

TEST_CASE("parse_vf_port_name reads pf<p>vf<n> and c<c>pf<p>vf<n> only", "[vf]") {
  CHECK(cni::parse_vf_port_name("pf0vf3") == cni::VfPortName{std::nullopt, 0, 3});
  CHECK(cni::parse_vf_port_name("pf1vf127") == cni::VfPortName{std::nullopt, 1, 127});
  CHECK(cni::parse_vf_port_name("c1pf0vf2") == cni::VfPortName{1, 0, 2});
  for (const char* other :
       {"", "p0", "pf0", "pf0sf1", "pf0vf", "vf3", "pf0vf3x", "pfxvf3", "c1p0", "cpf0vf1"}) {
    INFO(other);
    CHECK(cni::parse_vf_port_name(other) == std::nullopt);
  }
}
