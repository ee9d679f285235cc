// libcni's traffic control verbs (qdisc.h, tc_class.h, tc_filter.h) and the ifb link kind, in
// namespaces made here (the VF verbs: kernel_sriov_verbs_test.cpp); every state is read back
// through libcni and through `tc -j` / `ip -j`.
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/qdisc.h"
#include "libcni/kernel/tc_class.h"
#include "libcni/kernel/tc_filter.h"
#include "test/support/harness.h"
#include "test/support/kernel_fixture.h"

using strait::test::KernelNs;
using strait::test::unique_name;

namespace {

// `tc -j <args>` inside the namespace, parsed.
nlohmann::json tc(const KernelNs& ns, const std::string& args) {
  std::string out = ns.ns.exec("tc -j " + args);
  if (out.find_first_not_of(" \n") == std::string::npos) return nlohmann::json::array();
  return nlohmann::json::parse(out);
}

// A veth pair inside `ns` (both ends there), returned as (name, index).
std::pair<std::string, int> make_veth(KernelNs& ns) {
  const std::string name = unique_name("tv");
  cni::create_veth(ns.sock, {.name = name, .peer_name = unique_name("tp")});
  cni::set_link_up(ns.sock, name);
  return {name, cni::get_link(ns.sock, name).index};
}

}  // namespace

TEST_CASE("tc_handle_str prints handles as tc does", "[kernel][tc]") {
  CHECK(cni::tc_handle_str(cni::tc_handle(1, 0)) == "1:");
  CHECK(cni::tc_handle_str(cni::tc_handle(1, 1)) == "1:1");
  CHECK(cni::tc_handle_str(cni::kTcIngressHandle) == "ffff:");
  CHECK(cni::tc_handle_str(cni::kTcClsactEgress) == "ffff:fff3");
  CHECK(cni::tc_handle_str(cni::kTcRoot) == "root");
  CHECK(cni::tc_handle_str(cni::kTcIngressParent) == "ingress");
}

TEST_CASE("a tbf root qdisc is added, read back, replaced and deleted", "[kernel][tc]") {
  KernelNs ns("tq");
  auto [dev, index] = make_veth(ns);
  // The default root of a veth (noqueue, handle 0) does not count as a qdisc there.
  CHECK_FALSE(cni::find_qdisc(ns.sock, index, cni::kTcRoot).has_value());
  CHECK_FALSE(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcRoot));

  const cni::TbfParams p{.rate = 1250000, .burst = 12500, .limit = 31250};
  cni::add_qdisc(ns.sock, cni::tbf_qdisc(index, p));
  auto q = cni::find_qdisc(ns.sock, index, cni::kTcRoot);
  REQUIRE(q.has_value());
  CHECK(q->kind == "tbf");
  CHECK(q->handle == cni::tc_handle(1, 0));
  CHECK(q->ifindex == index);
  REQUIRE(q->tbf.has_value());
  CHECK(q->tbf->rate == p.rate);
  CHECK(q->tbf->limit == p.limit);
  CHECK(q->tbf->burst <= p.burst);
  CHECK(q->tbf->burst + cni::tbf_burst_tolerance(p.rate) >= p.burst);

  auto j = tc(ns, "qdisc show dev " + dev);
  REQUIRE(j.size() == 1);
  CHECK(j[0].at("kind") == "tbf");
  CHECK(j[0].at("handle") == "1:");
  CHECK(j[0].at("root") == true);
  CHECK(j[0].at("options").at("rate") == p.rate);
  CHECK(j[0].at("options").at("burst") == p.burst);
  CHECK(q->str() == "tbf 1: root dev if" + std::to_string(index) + " rate 1250000B/s burst " +
                        std::to_string(q->tbf->burst) + "B limit 31250B");

  // A second add at the same parent is EEXIST; replace changes it in place.
  try {
    cni::add_qdisc(ns.sock, cni::tbf_qdisc(index, p));
    FAIL("a second root qdisc was added");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EEXIST);
    CHECK_THAT(e.what(), Catch::StartsWith("failed to add qdisc tbf 1: root dev if"));
  }
  const cni::TbfParams p2{.rate = 4294967295u, .burst = 1000000, .limit = 2000000};
  cni::replace_qdisc(ns.sock, cni::tbf_qdisc(index, p2));
  q = cni::find_qdisc(ns.sock, index, cni::kTcRoot);
  REQUIRE(q->tbf.has_value());
  CHECK(q->tbf->rate == p2.rate);  // the largest 32-bit rate arrives intact
  CHECK(q->tbf->limit == p2.limit);
  CHECK(tc(ns, "qdisc show dev " + dev)[0].at("options").at("rate") == p2.rate);

  // A peak rate: a second bucket (tc's peakrate and mtu).
  const cni::TbfParams p3{
      .rate = 1250000, .burst = 12500, .limit = 31250, .peakrate = 1500000, .mtu = 3028};
  cni::replace_qdisc(ns.sock, cni::tbf_qdisc(index, p3));
  q = cni::find_qdisc(ns.sock, index, cni::kTcRoot);
  REQUIRE(q->tbf.has_value());
  CHECK(q->tbf->peakrate == p3.peakrate);
  CHECK(cni::same_tbf(*q->tbf, p3));
  CHECK_FALSE(cni::same_tbf(*q->tbf, p));  // p has no peak rate
  const auto opts = tc(ns, "qdisc show dev " + dev)[0].at("options");
  // tc -j leaves the peak rate out (its text shows it); the peak bucket is "minburst".
  CHECK(std::abs(opts.at("minburst").get<int64_t>() - 3028) <=
        cni::tbf_burst_tolerance(p3.peakrate));
  CHECK_THAT(ns.ns.exec("tc qdisc show dev " + dev), Catch::Contains("peakrate 12Mbit"));
  CHECK_THROWS_AS(
      cni::replace_qdisc(
          ns.sock,
          cni::tbf_qdisc(
              index, {.rate = 1000, .burst = 3000, .limit = 3000, .peakrate = 1000, .mtu = 3028})),
      std::invalid_argument);

  CHECK_THROWS_AS(
      cni::add_qdisc(ns.sock, cni::tbf_qdisc(index, {.rate = 0, .burst = 1, .limit = 1})),
      std::invalid_argument);
  CHECK_THROWS_AS(
      cni::add_qdisc(ns.sock,
                     cni::tbf_qdisc(index, {.rate = cni::kMaxTbfRate + 1, .burst = 1, .limit = 1})),
      std::invalid_argument);

  CHECK(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcRoot));
  CHECK_FALSE(cni::find_qdisc(ns.sock, index, cni::kTcRoot).has_value());
  CHECK(tc(ns, "qdisc show dev " + dev)[0].at("kind") == "noqueue");
  CHECK_FALSE(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcRoot));
  try {
    cni::delete_qdisc(ns.sock, index, cni::kTcRoot);
    FAIL("deleting a missing qdisc succeeded");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == ENOENT);
  }
}

TEST_CASE("an ingress qdisc with a u32 redirect to an ifb reads back exactly", "[kernel][tc]") {
  KernelNs ns("tf");
  auto [dev, index] = make_veth(ns);
  const std::string ifb = unique_name("ifb");
  cni::create_ifb(ns.sock, {.name = ifb, .mtu = 1400, .txqlen = 1000, .up = true});
  const cni::LinkInfo ifb_link = cni::get_link(ns.sock, ifb);
  CHECK(ifb_link.kind == "ifb");
  CHECK(ifb_link.mtu == 1400);
  CHECK(ifb_link.txqlen == 1000);
  CHECK(ifb_link.up);
  cni::set_link_alias(ns.sock, ifb, "strait test alias");
  CHECK(cni::get_link(ns.sock, ifb).alias == "strait test alias");
  CHECK(ns.link(ifb).at("ifalias") == "strait test alias");

  cni::add_qdisc(ns.sock, cni::ingress_qdisc(index));
  auto ingress = cni::find_qdisc(ns.sock, index, cni::kTcIngressParent);
  REQUIRE(ingress.has_value());
  CHECK(ingress->kind == "ingress");
  CHECK(ingress->handle == cni::kTcIngressHandle);
  CHECK(cni::list_filters(ns.sock, index, cni::kTcIngressHandle).empty());

  const cni::U32Filter f = cni::u32_redirect_all(index, cni::kTcIngressHandle, ifb_link.index);
  CHECK(f.str() == "u32 prio 1 protocol all parent ffff: dev if" + std::to_string(index) +
                       " match all flowid 1:1 action mirred egress redirect dev if" +
                       std::to_string(ifb_link.index));
  cni::add_u32_filter(ns.sock, f);
  auto filters = cni::list_filters(ns.sock, index, cni::kTcIngressHandle);
  REQUIRE(filters.size() == 1);
  const cni::TcFilter& got = filters[0];
  CHECK(got.kind == "u32");
  CHECK(got.priority == 1);
  CHECK(got.protocol == cni::kEthPAll);
  CHECK(got.parent == cni::kTcIngressHandle);
  CHECK(got.handle == 0x80000800u);  // 800::800
  CHECK(got.u32_keys == std::vector<cni::U32Key>{{0, 0, 0, 0}});
  CHECK(got.classid == cni::tc_handle(1, 1));
  REQUIRE(got.actions.size() == 1);
  CHECK(got.actions[0].kind == "mirred");
  CHECK(got.actions[0].mirred == cni::MirredAction{.kind = cni::MirredKind::kEgressRedirect,
                                                   .ifindex = ifb_link.index,
                                                   .verdict = cni::TcVerdict::kStolen});

  // tc agrees.
  nlohmann::json rule;
  for (const auto& e : tc(ns, "filter show dev " + dev + " ingress")) {
    if (e.contains("options") && e["options"].contains("actions")) rule = e;
  }
  REQUIRE(rule.is_object());
  CHECK(rule.at("protocol") == "all");
  CHECK(rule.at("pref") == 1);
  CHECK(rule.at("options").at("flowid") == "1:1");
  CHECK(rule.at("options").at("match").at("mask") == "0");
  const auto& act = rule.at("options").at("actions").at(0);
  CHECK(act.at("kind") == "mirred");
  CHECK(act.at("mirred_action") == "redirect");
  CHECK(act.at("direction") == "egress");
  CHECK(act.at("to_dev") == ifb);
  CHECK(act.at("control_action").at("type") == "stolen");

  // Deleting by priority and protocol, then everything at the parent.
  cni::delete_filters(ns.sock, index, cni::kTcIngressHandle, 1, cni::kEthPAll);
  CHECK(cni::list_filters(ns.sock, index, cni::kTcIngressHandle).empty());
  cni::add_u32_filter(ns.sock, f);
  cni::delete_filters(ns.sock, index, cni::kTcIngressHandle);
  CHECK(cni::list_filters(ns.sock, index, cni::kTcIngressHandle).empty());
  cni::add_u32_filter(ns.sock, f);

  // Deleting the ingress qdisc takes its filters along.
  CHECK(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcIngressParent));
  CHECK_FALSE(cni::find_qdisc(ns.sock, index, cni::kTcIngressParent).has_value());
  CHECK(tc(ns, "filter show dev " + dev + " ingress").empty());
  CHECK_FALSE(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcIngressParent));

  // clsact sits where ingress does.
  cni::add_qdisc(ns.sock, cni::clsact_qdisc(index));
  CHECK(cni::find_qdisc(ns.sock, index, cni::kTcIngressParent)->kind == "clsact");
  cni::add_u32_filter(ns.sock, cni::u32_redirect_all(index, cni::kTcClsactEgress, ifb_link.index));
  CHECK(cni::list_filters(ns.sock, index, cni::kTcClsactEgress).size() == 1);
  CHECK(cni::list_filters(ns.sock, index, cni::kTcClsactIngress).empty());
  CHECK(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcIngressParent));

  cni::delete_link(ns.sock, ifb);
  CHECK_FALSE(cni::find_link(ns.sock, ifb).has_value());
}

TEST_CASE("a redirected packet is shaped by the ifb's tbf", "[kernel][tc]") {
  // Two namespaces joined by a veth: what arrives at b's end is redirected to an ifb in b whose
  // tbf counts it.
  KernelNs a("ta");
  KernelNs b("tb");
  const std::string a_end = unique_name("ta");
  const std::string b_end = unique_name("tb");
  cni::create_veth(a.sock, {.name = a_end, .peer_name = b_end, .peer_netns_fd = b.fd()});
  a.ns.exec("ip addr add 192.0.2.1/24 dev " + a_end + " && ip link set " + a_end + " up");
  b.ns.exec("ip addr add 192.0.2.2/24 dev " + b_end + " && ip link set " + b_end + " up");
  const int b_index = cni::get_link(b.sock, b_end).index;
  const std::string ifb = unique_name("ifb");
  cni::create_ifb(b.sock, {.name = ifb, .up = true});
  const int ifb_index = cni::get_link(b.sock, ifb).index;
  cni::add_qdisc(b.sock, cni::tbf_qdisc(ifb_index, {.rate = 125000, .burst = 3028, .limit = 6056}));
  cni::add_qdisc(b.sock, cni::ingress_qdisc(b_index));
  cni::add_u32_filter(b.sock, cni::u32_redirect_all(b_index, cni::kTcIngressHandle, ifb_index));
  a.ns.exec("ping -c 3 -i 0.2 -W 1 192.0.2.2 >/dev/null");
  auto j = tc(b, "-s qdisc show dev " + ifb);
  REQUIRE(j.size() == 1);
  CHECK(j[0].at("packets").get<int>() >= 3);  // the echo requests, after the redirect
}

TEST_CASE("an HTB under a tbf, its classes and their bfifo queues read back exactly",
          "[kernel][tc]") {
  KernelNs ns("th");
  auto [dev, index] = make_veth(ns);
  cni::add_qdisc(ns.sock, cni::tbf_qdisc(index, {.rate = 1250000, .burst = 12500, .limit = 31250}));
  const cni::Qdisc htb = cni::htb_qdisc(index, cni::tc_handle(0x10, 0), cni::tc_handle(1, 1), 2);
  cni::add_qdisc(ns.sock, htb);
  const cni::HtbClass c1{.ifindex = index,
                         .parent = cni::tc_handle(0x10, 0),
                         .classid = cni::tc_handle(0x10, 1),
                         .prio = 0,
                         .rate = 625000,
                         .ceil = 625000,
                         .buffer = 3028,
                         .cbuffer = 3028,
                         .quantum = 1514};
  cni::HtbClass c2 = c1;
  c2.classid = cni::tc_handle(0x10, 2);
  c2.prio = 1;
  c2.rate = c2.ceil = 2500000;
  c2.buffer = c2.cbuffer = 67050;
  cni::add_htb_class(ns.sock, c1);
  cni::add_htb_class(ns.sock, c2);
  const cni::Qdisc fifo = cni::bfifo_qdisc(index, cni::tc_handle(0x12, 0), c2.classid, 31250);
  cni::add_qdisc(ns.sock, fifo);

  auto q = cni::find_qdisc(ns.sock, index, cni::tc_handle(1, 1));
  REQUIRE(q.has_value());
  CHECK(*q == htb);
  q = cni::find_qdisc(ns.sock, index, c2.classid);
  REQUIRE(q.has_value());
  CHECK(*q == fifo);
  const auto classes = cni::list_htb_classes(ns.sock, index);
  REQUIRE(classes.size() == 2);
  for (const auto& want : {c1, c2}) {
    bool found = false;
    for (const auto& have : classes) {
      if (have.classid != want.classid) continue;
      found = true;
      INFO(have.str() << " vs " << want.str());
      CHECK(cni::same_htb_class(have, want));
    }
    CHECK(found);
  }
  // tc prints classes without JSON; a class right under the HTB has parent "root" there.
  const std::string text = ns.ns.exec("tc class show dev " + dev);
  CHECK_THAT(text, Catch::Contains("class htb 10:1 root"));
  CHECK_THAT(text, Catch::Contains("prio 0 rate 5Mbit ceil 5Mbit"));
  CHECK_THAT(text, Catch::Contains("class htb 10:2 root leaf 12: prio 1 rate 20Mbit ceil 20Mbit"));
  auto j = tc(ns, "qdisc show dev " + dev);
  bool saw_bfifo = false;
  for (const auto& qd : j) {
    if (qd.at("kind") == "bfifo") {
      saw_bfifo = true;
      CHECK(qd.at("parent") == "10:2");
      CHECK(qd.at("options").at("limit") == 31250);
    }
  }
  CHECK(saw_bfifo);
  // A class whose rate does not fit 32 bits is refused before anything is sent.
  cni::HtbClass big = c1;
  big.classid = cni::tc_handle(0x10, 3);
  big.rate = cni::kMaxHtbRate + 1;
  CHECK_THROWS_AS(cni::add_htb_class(ns.sock, big), std::invalid_argument);
  // Deleting the tbf takes everything under it.
  CHECK(cni::delete_qdisc_if_exists(ns.sock, index, cni::kTcRoot));
  CHECK(cni::list_htb_classes(ns.sock, index).empty());
}
