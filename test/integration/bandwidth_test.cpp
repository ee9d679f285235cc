// The bandwidth executable, run for real after a real first plugin (test/support/pod_fixture.h):
// the reference bridge and ptp (a veth with a host end), our macvlan and a veth standing in for
// an SR-IOV VF (no host end). Every qdisc, filter and ifb is read back exactly through libcni's
// tc verbs and cross-checked with `tc -j`; DEL twice; rollback when the ifb cannot be created;
// interop with the reference bandwidth both ways; GC. Nothing runs in the machine's netns.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/core/log.h"
#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"
#include "libcni/kernel/qdisc.h"
#include "libcni/kernel/tc_class.h"
#include "libcni/kernel/tc_filter.h"
#include "libcni/protocol/env.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/skel.h"
#include "libcni/protocol/version.h"
#include "plugins/bandwidth/bandwidth.h"
#include "plugins/bandwidth/bandwidth_config.h"
#include "plugins/bandwidth/tbf_sizing.h"
#include "test/support/harness.h"
#include "test/support/pod_fixture.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using strait::test::bin;
using strait::test::plugin_env;
using strait::test::PluginRun;
using strait::test::PodKind;
using strait::test::PodWorld;
using strait::test::run_plugin;
using strait::test::sh;
using strait::test::sh_ok;
using strait::test::TempDir;
using strait::test::TempNetns;
using strait::test::unique_name;

constexpr uint64_t kIngressRate = 80000000;        // 10 MB/s
constexpr uint64_t kIngressBurst = 160000;         // 20000 B
constexpr uint64_t kEgressRate = 16000000;         // 2 MB/s
constexpr uint64_t kContainerdBurst = 4294967295;  // what containerd sends (kubernetes #90838)

// The README's rule, written out independently of tbf_sizing.cpp: the queue holds latencyMs
// at the rate plus 6 frames; the bucket is the configured burst capped by the default
// maxBurst (20 ms at the rate, at least the queue) and at least 2 frames; the peak rate is 1.2x
// the rate through a peak bucket of 2 ms at the peak rate, between 2 frames and the smaller of
// 64 KiB + a frame and half the queue.
cni::TbfParams expected_tbf(uint64_t rate_bits, uint64_t burst_bits, int mtu,
                            double latency_ms = bandwidth::kDefaultLatencyMs) {
  const uint64_t frame = static_cast<uint64_t>(mtu) + 14;
  const uint64_t rate = rate_bits / 8;
  const uint64_t limit =
      static_cast<uint64_t>(static_cast<double>(rate) * latency_ms / 1000) + 6 * frame;
  const uint64_t cap = std::max<uint64_t>(rate * 20 / 1000, limit);
  const uint64_t burst = std::max<uint64_t>(std::min<uint64_t>(burst_bits / 8, cap), 2 * frame);
  const auto peak = static_cast<uint64_t>(static_cast<double>(rate) * 1.2);
  const uint64_t peak_bucket =
      std::clamp<uint64_t>(peak * 2 / 1000, 2 * frame, std::min(65536 + frame, limit / 2));
  return {.rate = rate,
          .burst = static_cast<uint32_t>(burst),
          .limit = static_cast<uint32_t>(limit),
          .peakrate = peak,
          .mtu = static_cast<uint32_t>(peak_bucket)};
}

// Upstream's ifb name, computed with coreutils: "bwp" + sha512(network + containerID)[:12].
std::string upstream_ifb_name(const std::string& network, const std::string& cid) {
  std::string hex = sh_ok("printf %s '" + network + cid + "' | sha512sum | cut -c1-12");
  return "bwp" + hex.substr(0, 12);
}

json bandwidth_conf(const PodWorld& w, const json& extra) {
  json c = {{"cniVersion", w.version},
            {"name", w.network},
            {"type", "bandwidth"},
            {"prevResult", w.prev}};
  for (const auto& [k, v] : extra.items()) c[k] = v;
  return c;
}

json both_directions() {
  return {{"ingressRate", kIngressRate},
          {"ingressBurst", kIngressBurst},
          {"egressRate", kEgressRate},
          {"egressBurst", kContainerdBurst}};
}

PluginRun run_bw(const PodWorld& w, const std::string& verb, const json& conf,
                 const std::string& binary = bin("bandwidth"), const std::string& netns = "") {
  cni::EnvMap env =
      plugin_env(verb, w.container_id, netns.empty() ? w.pod->path() : netns, w.ifname);
  return run_plugin(binary, env, conf.dump(), w.host.name());
}

json add_ok(const PodWorld& w, const json& conf, const std::string& binary = bin("bandwidth")) {
  PluginRun r = run_bw(w, "ADD", conf, binary);
  INFO("ADD stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return r.json();
}

void ok(const PluginRun& r, const std::string& what) {
  INFO(what << " stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

// What sits under a tbf: qdiscs that are neither the root nor the ingress one, HTB classes,
// and the filters of the HTB 10:.
struct Band {
  std::vector<cni::Qdisc> qdiscs;
  std::vector<cni::HtbClass> classes;
  std::vector<cni::TcFilter> filters;
};

Band read_band(cni::NlSocket& sock, int ifindex) {
  Band b;
  for (auto& q : cni::list_qdiscs(sock, ifindex)) {
    if (q.parent != cni::kTcRoot && q.parent != cni::kTcIngressParent) b.qdiscs.push_back(q);
  }
  b.classes = cni::list_htb_classes(sock, ifindex);
  b.filters = cni::list_filters(sock, ifindex, cni::tc_handle(0x10, 0));
  return b;
}

// The README's small-packet band, written out independently of small_band.cpp: htb 10: on the
// tbf's 1:1 defaulting to 10:2; under the parent class 10:10 (twice the rate, buckets 64 KiB + a
// frame) 10:1 prio 0 at half the rate (bucket 2 frames) and 10:2 prio 1 at the parent's rate
// less that, both borrowing up to the parent's (buckets at the ceiling 64 KiB + a frame), each
// with a bfifo of the tbf's limit (11:, 12:);
// u32 on 10: sends IPv4 packets shorter than 256 bytes (prio 1) and IPv6 ones with a payload
// shorter than 256 (prio 2) to 10:1.
void require_band(const Band& b, int ifindex, const cni::TbfParams& tbf, int mtu) {
  const uint32_t frame = static_cast<uint32_t>(mtu) + 14;
  REQUIRE(b.qdiscs.size() == 3);
  for (const auto& q : b.qdiscs) {
    INFO(q.str());
    if (q.kind == "htb") {
      CHECK(q.handle == cni::tc_handle(0x10, 0));
      CHECK(q.parent == cni::tc_handle(1, 1));
      CHECK(q.htb_default == 2u);
    } else {
      CHECK(q.kind == "bfifo");
      CHECK(q.fifo_limit == tbf.limit);
      CHECK(q.parent == cni::tc_handle(0x10, cni::tc_major(q.handle) - 0x10));
    }
  }
  const uint32_t gso = 65536 + frame;
  const cni::HtbClass root{.ifindex = ifindex,
                           .parent = cni::tc_handle(0x10, 0),
                           .classid = cni::tc_handle(0x10, 0x10),
                           .prio = 0,
                           .rate = 2 * tbf.rate,
                           .ceil = 2 * tbf.rate,
                           .buffer = gso,
                           .cbuffer = gso,
                           .quantum = frame};
  cni::HtbClass small = root;
  small.parent = root.classid;
  small.classid = cni::tc_handle(0x10, 1);
  small.rate = tbf.rate / 2;
  small.buffer = 2 * frame;
  cni::HtbClass bulk = root;
  bulk.parent = root.classid;
  bulk.classid = cni::tc_handle(0x10, 2);
  bulk.prio = 1;
  bulk.rate = 2 * tbf.rate - tbf.rate / 2;
  REQUIRE(b.classes.size() == 3);
  for (const auto& want : {root, small, bulk}) {
    bool found = false;
    for (const auto& have : b.classes) {
      if (have.classid != want.classid) continue;
      found = true;
      INFO(have.str() << ", want " << want.str());
      CHECK(cni::same_htb_class(have, want));
    }
    CHECK(found);
  }
  REQUIRE(b.filters.size() == 2);
  CHECK(b.filters[0].priority == 1);
  CHECK(b.filters[0].protocol == 0x0800);
  CHECK(b.filters[0].u32_keys == std::vector<cni::U32Key>{{0, htonl(0x0000ff00u), 0, 0}});
  CHECK(b.filters[1].priority == 2);
  CHECK(b.filters[1].protocol == 0x86dd);
  CHECK(b.filters[1].u32_keys == std::vector<cni::U32Key>{{0, htonl(0xff000000u), 4, 0}});
  for (const auto& f : b.filters) {
    CHECK(f.classid == cni::tc_handle(0x10, 1));
    CHECK(f.actions.empty());
  }
}

// What one device's shaping looks like, read through libcni in `ns`.
struct Observed {
  cni::LinkInfo dev;
  std::optional<cni::Qdisc> root;
  std::optional<cni::Qdisc> ingress;
  std::vector<cni::TcFilter> filters;
  std::optional<cni::LinkInfo> ifb;
  std::optional<cni::Qdisc> ifb_root;
  Band band;      // under root
  Band ifb_band;  // under ifb_root
};

Observed observe(const TempNetns& ns, const std::string& dev, const std::string& ifb_name) {
  cni::Netns handle = cni::Netns::open(ns.path());
  cni::NlSocket sock = cni::NlSocket::in(handle);
  Observed o;
  o.dev = cni::get_link(sock, dev);
  o.root = cni::find_qdisc(sock, o.dev.index, cni::kTcRoot);
  o.ingress = cni::find_qdisc(sock, o.dev.index, cni::kTcIngressParent);
  if (o.ingress) o.filters = cni::list_filters(sock, o.dev.index, cni::kTcIngressHandle);
  o.ifb = cni::find_link(sock, ifb_name);
  if (o.ifb) o.ifb_root = cni::find_qdisc(sock, o.ifb->index, cni::kTcRoot);
  if (o.root) o.band = read_band(sock, o.dev.index);
  if (o.ifb_root) o.ifb_band = read_band(sock, o.ifb->index);
  return o;
}

// `transmit` on dev's root, `receive` through the ifb (exact devices, handles, filter).
void require_shaped(const Observed& o, const std::optional<cni::TbfParams>& transmit,
                    const std::optional<cni::TbfParams>& receive, const std::string& ifb_name,
                    const std::string& alias) {
  INFO("device " << o.dev.name);
  if (transmit) {
    REQUIRE(o.root.has_value());
    CHECK(o.root->kind == "tbf");
    CHECK(o.root->handle == cni::tc_handle(1, 0));
    REQUIRE(o.root->tbf.has_value());
    INFO("root " << o.root->str() << ", want " << cni::tbf_qdisc(o.dev.index, *transmit).str());
    CHECK(cni::same_tbf(*o.root->tbf, *transmit));
    require_band(o.band, o.dev.index, *transmit, o.dev.mtu);
  } else {
    CHECK_FALSE(o.root.has_value());
  }
  if (!receive) {
    CHECK_FALSE(o.ingress.has_value());
    CHECK_FALSE(o.ifb.has_value());
    return;
  }
  REQUIRE(o.ifb.has_value());
  CHECK(o.ifb->name == ifb_name);
  CHECK(o.ifb->kind == "ifb");
  CHECK(o.ifb->up);
  CHECK(o.ifb->mtu == o.dev.mtu);
  CHECK(o.ifb->alias == alias);
  REQUIRE(o.ifb_root.has_value());
  CHECK(o.ifb_root->kind == "tbf");
  CHECK(o.ifb_root->handle == cni::tc_handle(1, 0));
  INFO("ifb root " << o.ifb_root->str());
  CHECK(cni::same_tbf(*o.ifb_root->tbf, *receive));
  require_band(o.ifb_band, o.ifb->index, *receive, o.dev.mtu);
  REQUIRE(o.ingress.has_value());
  CHECK(o.ingress->kind == "ingress");
  CHECK(o.ingress->handle == cni::kTcIngressHandle);
  REQUIRE(o.filters.size() == 1);
  const cni::TcFilter& f = o.filters[0];
  CHECK(f.kind == "u32");
  CHECK(f.priority == 1);
  CHECK(f.protocol == cni::kEthPAll);
  CHECK(f.u32_keys == std::vector<cni::U32Key>{{0, 0, 0, 0}});
  CHECK(f.classid == cni::tc_handle(1, 1));
  REQUIRE(f.actions.size() == 1);
  CHECK(f.actions[0].mirred == cni::MirredAction{.kind = cni::MirredKind::kEgressRedirect,
                                                 .ifindex = o.ifb->index,
                                                 .verdict = cni::TcVerdict::kStolen});
}

void require_unshaped(const Observed& o) {
  INFO("device " << o.dev.name);
  CHECK_FALSE(o.root.has_value());
  CHECK_FALSE(o.ingress.has_value());
  CHECK_FALSE(o.ifb.has_value());
}

// `tc -j qdisc show dev <dev>` in ns: the tbf's rate and burst as tc sees them.
void tc_agrees(const TempNetns& ns, const std::string& dev, const cni::TbfParams& want) {
  json j = json::parse(ns.exec("tc -j qdisc show dev " + dev));
  REQUIRE(j.size() >= 1);
  CHECK(j[0].at("kind") == "tbf");
  CHECK(j[0].at("handle") == "1:");
  CHECK(j[0].at("options").at("rate") == want.rate);
  const int64_t burst = j[0]["options"].at("burst").get<int64_t>();
  CHECK(std::abs(burst - static_cast<int64_t>(want.burst)) <= cni::tbf_burst_tolerance(want.rate));
}

// A result as we print it: an empty "dns" is left out (the reference prints "dns": {}).
json without_empty_dns(json r) {
  if (r.contains("dns") && r["dns"].empty()) r.erase("dns");
  return r;
}

// Links and qdiscs of a namespace, for "nothing changed".
// ip's stderr is left out: "Peer netns reference is invalid." comes and goes with whether the
// peer's netns has an id here yet (assigned lazily), which is not what these tests compare.
std::string ns_state(const TempNetns& ns) {
  return sh_ok("ip -n " + ns.name() + " -o link show 2>/dev/null | cut -d: -f2 | sort; tc -n " +
               ns.name() + " qdisc show; tc -n " + ns.name() +
               " filter show ingress 2>/dev/null || true");
}

// The host end of `pod`'s veth `ifname`, by the index its pod end names.
std::string host_end(const TempNetns& host, const TempNetns& pod, const std::string& ifname) {
  cni::Netns p = cni::Netns::open(pod.path());
  cni::Netns h = cni::Netns::open(host.path());
  cni::NlSocket pod_sock = cni::NlSocket::in(p);
  cni::NlSocket host_sock = cni::NlSocket::in(h);
  return cni::get_link(host_sock, cni::get_link(pod_sock, ifname).link_index).name;
}

// Pods with a host end (shaped there, as upstream) and pods without one (shaped inside).
const std::vector<PodKind> kHostVethKinds = {PodKind::kBridge, PodKind::kPtp, PodKind::kVxlan};
const std::vector<PodKind> kInPodKinds = {PodKind::kMacvlan, PodKind::kVfStandIn};

}  // namespace

TEST_CASE("bandwidth on a veth pod shapes its host end exactly as upstream", "[bandwidth]") {
  for (PodKind kind : kHostVethKinds) {
    for (const std::string version : {"0.3.1", "1.0.0"}) {
      DYNAMIC_SECTION(strait::test::pod_kind_name(kind) << " " << version) {
        PodWorld w(kind);
        w.version = version;
        w.attach();
        const std::string veth = w.host_veth();
        REQUIRE_FALSE(veth.empty());
        const std::string ifb = upstream_ifb_name(w.network, w.container_id);
        const std::string alias =
            "strait-bandwidth " + w.network + " " + w.container_id + " " + w.ifname;
        const std::string pod_before = ns_state(*w.pod);
        const cni::LinkInfo dev_before = observe(w.host, veth, ifb).dev;
        const int mtu = dev_before.mtu;

        PluginRun r = run_bw(w, "ADD", bandwidth_conf(w, both_directions()));
        INFO("stdout: " << r.out << "\nstderr: " << r.err);
        REQUIRE(r.exit_code == 0);
        // The containerd-size burst was capped, and the log says so.
        CHECK_THAT(r.err, Catch::Contains("egress: burst 4294967295 bits capped"));
        json res = r.json();
        json want = without_empty_dns(w.prev);
        CHECK(res.at("cniVersion") == version);
        REQUIRE(res.at("interfaces").size() == w.prev.at("interfaces").size() + 1);
        const json& added = res["interfaces"].back();
        CHECK(added.at("name") == ifb);
        CHECK_FALSE(added.contains("sandbox"));
        json without = res;
        without["interfaces"].erase(without["interfaces"].size() - 1);
        CHECK(without_empty_dns(without) == want);

        // Ingress (to the pod) on the host veth, egress through the ifb.
        const Observed o = observe(w.host, veth, ifb);
        const auto in = expected_tbf(kIngressRate, kIngressBurst, mtu);
        const auto eg = expected_tbf(kEgressRate, kContainerdBurst, mtu);
        require_shaped(o, in, eg, ifb, alias);
        CHECK(added.at("mac") == o.ifb->mac);
        // The ifb takes the host veth's queue length, as upstream (the kernel's default, 32,
        // when the veth has none).
        CHECK(o.ifb->txqlen == (dev_before.txqlen > 0 ? dev_before.txqlen : 32u));
        tc_agrees(w.host, veth, in);
        tc_agrees(w.host, ifb, eg);
        CHECK(ns_state(*w.pod) == pod_before);  // nothing inside the pod

        // CHECK (from 0.4.0 on) with the final result as prevResult.
        w.prev = res;
        PluginRun check = run_bw(w, "CHECK", bandwidth_conf(w, both_directions()));
        if (version == "0.3.1") {
          CHECK(check.exit_code == 1);
          CHECK(check.json().at("code") == 1);
        } else {
          ok(check, "CHECK");
          // CHECK sees a change under the tbf: the small-packet band's IPv6 rule gone.
          w.host.exec("tc filter del dev " + ifb + " parent 10: prio 2");
          PluginRun no_rule = run_bw(w, "CHECK", bandwidth_conf(w, both_directions()));
          CHECK(no_rule.exit_code == 1);
          CHECK_THAT(no_rule.json().value("msg", ""), Catch::Contains("small-packet band"));
          // CHECK sees a change: another rate on the host veth.
          w.host.exec("tc qdisc replace dev " + veth +
                      " root handle 1: tbf rate 1mbit burst 20000 limit 30000");
          PluginRun bad = run_bw(w, "CHECK", bandwidth_conf(w, both_directions()));
          CHECK(bad.exit_code == 1);
          CHECK_THAT(bad.json().value("msg", ""), Catch::Contains("\"" + veth + "\""));
          CHECK_THAT(bad.json().value("msg", ""), Catch::Contains("root qdisc tbf 1:"));
        }

        // DEL removes all of it; twice is fine.
        for (int round = 0; round < 2; ++round) {
          ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "DEL");
          require_unshaped(observe(w.host, veth, ifb));
        }
        CHECK(ns_state(*w.pod) == pod_before);
      }
    }
  }
}

// "class htb 10:1 ... Sent 1234 bytes 5 pkt" in `tc -s class show`: the packets of `classid`.
int class_packets(const TempNetns& ns, const std::string& dev, const std::string& classid) {
  std::istringstream in(ns.exec("tc -s class show dev " + dev));
  std::string line;
  bool ours = false;
  while (std::getline(in, line)) {
    if (line.rfind("class ", 0) == 0) ours = line.rfind("class htb " + classid + " ", 0) == 0;
    const size_t sent = line.find(" Sent ");
    if (ours && sent != std::string::npos) {
      std::istringstream words(line.substr(sent + 6));
      long bytes = 0;
      std::string unit;
      int packets = -1;
      words >> bytes >> unit >> packets;
      return packets;
    }
  }
  return -1;
}

TEST_CASE("bandwidth sends small packets through the priority class and full ones behind it",
          "[bandwidth]") {
  PodWorld w(PodKind::kPtp);
  w.attach();
  const std::string veth = w.host_veth();
  add_ok(w, bandwidth_conf(w, {{"ingressRate", kIngressRate}, {"ingressBurst", kIngressBurst}}));
  const std::string cidr = w.prev.at("ips").at(0).at("address");
  const std::string pod_ip = cidr.substr(0, cidr.find('/'));
  // The echo requests leave the host end through its tbf: 84-byte ones are small, 1028-byte
  // ones are not.
  w.host.exec("ping -c 4 -i 0.2 -W 1 " + pod_ip + " >/dev/null");
  CHECK(class_packets(w.host, veth, "10:1") >= 4);
  const int bulk_before = class_packets(w.host, veth, "10:2");
  REQUIRE(bulk_before >= 0);
  w.host.exec("ping -c 3 -i 0.2 -W 1 -s 1000 " + pod_ip + " >/dev/null");
  CHECK(class_packets(w.host, veth, "10:2") >= bulk_before + 3);
  ok(run_bw(w, "DEL",
            bandwidth_conf(w, {{"ingressRate", kIngressRate}, {"ingressBurst", kIngressBurst}})),
     "DEL");
}

TEST_CASE("bandwidth on a pod without a host end shapes inside the pod netns", "[bandwidth]") {
  for (PodKind kind : kInPodKinds) {
    DYNAMIC_SECTION(strait::test::pod_kind_name(kind)) {
      PodWorld w(kind, "net1");
      w.version = "1.1.0";
      w.attach();
      const std::string host_before = ns_state(w.host);
      const std::string ifb = bandwidth::pod_ifb_name(w.network, w.container_id, w.ifname);
      CHECK(ifb.size() == 15);
      CHECK(ifb.rfind("bwi", 0) == 0);
      const std::string alias =
          "strait-bandwidth " + w.network + " " + w.container_id + " " + w.ifname;
      const int mtu = observe(*w.pod, w.ifname, ifb).dev.mtu;

      json res = add_ok(w, bandwidth_conf(w, both_directions()));
      const json& added = res.at("interfaces").back();
      CHECK(added.at("name") == ifb);
      CHECK(added.at("sandbox") == w.pod->path());

      // Egress (from the pod) on the pod's interface, ingress through an ifb in the pod.
      const Observed o = observe(*w.pod, w.ifname, ifb);
      const auto eg = expected_tbf(kEgressRate, kContainerdBurst, mtu);
      const auto in = expected_tbf(kIngressRate, kIngressBurst, mtu);
      require_shaped(o, eg, in, ifb, alias);
      tc_agrees(*w.pod, w.ifname, eg);
      tc_agrees(*w.pod, ifb, in);
      CHECK(ns_state(w.host) == host_before);  // nothing on the host

      w.prev = res;
      ok(run_bw(w, "CHECK", bandwidth_conf(w, both_directions())), "CHECK");
      // CHECK sees a missing ifb.
      w.pod->exec("ip link del " + ifb);
      PluginRun bad = run_bw(w, "CHECK", bandwidth_conf(w, both_directions()));
      CHECK(bad.exit_code == 1);
      CHECK_THAT(bad.json().value("msg", ""), Catch::Contains("ifb \"" + ifb + "\" not found"));

      for (int round = 0; round < 2; ++round) {
        ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "DEL");
        require_unshaped(observe(*w.pod, w.ifname, ifb));
      }
      CHECK(ns_state(w.host) == host_before);

      // One direction only: egress alone is a root tbf and no ifb.
      json egress_only = {{"egressRate", kEgressRate}, {"egressBurst", 100000}};
      w.prev = res;
      w.prev["interfaces"].erase(w.prev["interfaces"].size() - 1);
      json r2 = add_ok(w, bandwidth_conf(w, egress_only));
      CHECK(r2.at("interfaces").size() == w.prev.at("interfaces").size());
      require_shaped(observe(*w.pod, w.ifname, ifb), expected_tbf(kEgressRate, 100000, mtu),
                     std::nullopt, ifb, alias);
      ok(run_bw(w, "DEL", bandwidth_conf(w, egress_only)), "DEL");
      require_unshaped(observe(*w.pod, w.ifname, ifb));
    }
  }
}

TEST_CASE("bandwidth takes its limits from runtimeConfig unless the config has them",
          "[bandwidth]") {
  PodWorld w(PodKind::kPtp);
  w.attach();
  const std::string veth = w.host_veth();
  const std::string ifb = upstream_ifb_name(w.network, w.container_id);
  const int mtu = observe(w.host, veth, ifb).dev.mtu;
  json c = bandwidth_conf(
      w,
      {{"capabilities", {{"bandwidth", true}}},
       {"runtimeConfig", {{"bandwidth", {{"ingressRate", 40000000}, {"ingressBurst", 40000}}}}}});
  add_ok(w, c);
  require_shaped(observe(w.host, veth, ifb), expected_tbf(40000000, 40000, mtu), std::nullopt, ifb,
                 "");
  ok(run_bw(w, "DEL", c), "DEL");
  // A static egress limit wins over runtimeConfig entirely (upstream's precedence).
  c["egressRate"] = 24000000;
  c["egressBurst"] = 50000;
  add_ok(w, c);
  require_shaped(observe(w.host, veth, ifb), std::nullopt, expected_tbf(24000000, 50000, mtu), ifb,
                 "strait-bandwidth " + w.network + " " + w.container_id + " " + w.ifname);
  ok(run_bw(w, "DEL", c), "DEL");
  require_unshaped(observe(w.host, veth, ifb));
}

TEST_CASE("bandwidth with all limits zero passes prevResult through; without prevResult is 7",
          "[bandwidth]") {
  PodWorld w(PodKind::kBridge);
  w.attach();
  const std::string before = ns_state(w.host) + ns_state(*w.pod);
  json zero = {{"ingressRate", 0}, {"ingressBurst", 0}, {"egressRate", 0}, {"egressBurst", 0}};
  json res = add_ok(w, bandwidth_conf(w, zero));
  CHECK(res == without_empty_dns(w.prev));
  CHECK(add_ok(w, bandwidth_conf(w, json::object())) == without_empty_dns(w.prev));  // none
  CHECK(ns_state(w.host) + ns_state(*w.pod) == before);

  json no_prev = bandwidth_conf(w, both_directions());
  no_prev.erase("prevResult");
  PluginRun r = run_bw(w, "ADD", no_prev);
  CHECK(r.exit_code == 1);
  CHECK(r.json().at("code") == 7);
  CHECK_THAT(r.json().value("msg", ""), Catch::Contains("chained plugin"));
  CHECK(ns_state(w.host) + ns_state(*w.pod) == before);
}

TEST_CASE("bandwidth does not take a host device with the peer's index for the pod's peer",
          "[bandwidth]") {
  // Indexes repeat in every netns: the pod's eth0 (30) has its peer at index 20 in a wire
  // netns, and the host has a veth at index 20 whose peer is index 30 of another pod. Only the
  // namespace id tells them apart (found by the soak test, where every pod's net1 is index 2).
  PodWorld w(PodKind::kVfStandIn);
  TempNetns other("bwo");
  TempNetns wire("bwq");
  w.host.exec("ip link add name hq0 index 20 type veth peer name eth0 index 30 netns " +
              other.name() + " && ip link set hq0 up");
  w.pod->exec("ip link add name eth0 index 30 type veth peer name wp0 index 20 netns " +
              wire.name() + " && ip link set eth0 up");
  w.prev = {{"cniVersion", "1.0.0"},
            {"interfaces", json::array({{{"name", "eth0"}, {"sandbox", w.pod->path()}}})},
            {"ips", json::array()}};
  const std::string host_before = ns_state(w.host);
  json res = add_ok(w, bandwidth_conf(w, both_directions()));
  // Shaped in the pod, not on the host's hq0.
  CHECK(res.at("interfaces").back().at("sandbox") == w.pod->path());
  CHECK(ns_state(w.host) == host_before);
  const std::string ifb = bandwidth::pod_ifb_name(w.network, w.container_id, w.ifname);
  CHECK(observe(*w.pod, "eth0", ifb).ifb.has_value());
  ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "DEL");
  require_unshaped(observe(*w.pod, "eth0", ifb));
  CHECK(ns_state(w.host) == host_before);
}

TEST_CASE("bandwidth refuses an interface kind it cannot shape and changes nothing",
          "[bandwidth]") {
  PodWorld w(PodKind::kVfStandIn);
  w.pod->exec("ip link add eth0 type bridge");
  w.prev = {{"cniVersion", "1.0.0"},
            {"interfaces", json::array({{{"name", "eth0"}, {"sandbox", w.pod->path()}}})},
            {"ips", json::array()}};
  const std::string before = ns_state(w.host) + ns_state(*w.pod);
  PluginRun r = run_bw(w, "ADD", bandwidth_conf(w, both_directions()));
  CHECK(r.exit_code == 1);
  CHECK(r.json().at("code") == 7);
  CHECK_THAT(r.json().value("msg", ""), Catch::Contains("\"eth0\""));
  CHECK_THAT(r.json().value("msg", ""), Catch::Contains("a bridge"));
  CHECK(ns_state(w.host) + ns_state(*w.pod) == before);
}

TEST_CASE("bandwidth ADD twice fails and keeps the first; a killed ADD's ifb is replaced",
          "[bandwidth]") {
  PodWorld w(PodKind::kPtp);
  w.attach();
  const std::string veth = w.host_veth();
  const std::string ifb = upstream_ifb_name(w.network, w.container_id);
  add_ok(w, bandwidth_conf(w, both_directions()));
  const std::string shaped = ns_state(w.host);
  PluginRun again = run_bw(w, "ADD", bandwidth_conf(w, both_directions()));
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.json().value("msg", ""), Catch::Contains("already has a root qdisc"));
  CHECK(ns_state(w.host) == shaped);
  ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "DEL");

  // What a killed ADD leaves: the ifb, nothing else. The next ADD deletes and remakes it.
  w.host.exec("ip link add " + ifb + " type ifb");
  add_ok(w, bandwidth_conf(w, both_directions()));
  CHECK(observe(w.host, veth, ifb).ifb->alias.rfind("strait-bandwidth ", 0) == 0);
  ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "DEL");
  require_unshaped(observe(w.host, veth, ifb));

  // A device of another kind with that name is not ours to delete.
  w.host.exec("ip link add " + ifb + " type bridge");
  const std::string before = ns_state(w.host);
  PluginRun taken = run_bw(w, "ADD", bandwidth_conf(w, both_directions()));
  CHECK(taken.exit_code == 1);
  CHECK_THAT(taken.json().value("msg", ""), Catch::Contains("a bridge named \"" + ifb + "\""));
  CHECK(ns_state(w.host) == before);
}

TEST_CASE("bandwidth rolls back the ingress tbf when the ifb cannot be created",
          "[bandwidth][rollback]") {
  PodWorld w(PodKind::kBridge);
  w.attach();
  const std::string veth = w.host_veth();
  const std::string ifb = upstream_ifb_name(w.network, w.container_id);
  const std::string before = ns_state(w.host);
  const std::string conf = bandwidth_conf(w, both_directions()).dump();
  cni::EnvMap env = plugin_env("ADD", w.container_id, w.pod->path(), w.ifname);
  env["ASAN_OPTIONS"] = "detect_leaks=0";  // LeakSanitizer cannot run under ptrace

  // Which sendmsg creates the ifb: the first RTM_NEWLINK with NLM_F_CREATE (strace decodes
  // the messages of the host netns' socket).
  TempDir log_dir("strait-bw-strace");
  const std::string log = log_dir.path() + "/log";
  std::vector<std::string> trace = {
      "/usr/bin/ip", "netns", "exec", w.host.name(),   "/usr/bin/strace",
      "-o",          log,     "-e",   "trace=sendmsg", bin("bandwidth")};
  REQUIRE(cni::spawn(trace, env, conf).exit_code == 0);
  int k = 0, n = 0;
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("sendmsg(", 0) != 0) continue;
      ++n;
      if (k == 0 && line.find("RTM_NEWLINK") != std::string::npos &&
          line.find("NLM_F_CREATE") != std::string::npos) {
        k = n;
      }
    }
  }
  REQUIRE(k > 0);
  ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "DEL");
  REQUIRE(ns_state(w.host) == before);

  // Now the kernel "refuses" it: the sendmsg fails with EPERM, the ADD fails and undoes the
  // tbf it had put on the host veth.
  std::vector<std::string> inject = {"/usr/bin/ip",
                                     "netns",
                                     "exec",
                                     w.host.name(),
                                     "/usr/bin/strace",
                                     "-o",
                                     "/dev/null",
                                     "-e",
                                     "trace=sendmsg",
                                     "-e",
                                     "inject=sendmsg:error=EPERM:when=" + std::to_string(k),
                                     bin("bandwidth")};
  cni::ExecResult r = cni::spawn(inject, env, conf);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  json err = json::parse(r.out);
  CHECK_THAT(err.value("msg", ""), Catch::Contains("failed to create ifb link \"" + ifb + "\""));
  require_unshaped(observe(w.host, veth, ifb));
  CHECK(ns_state(w.host) == before);
}

TEST_CASE("bandwidth interoperates with the reference bandwidth both ways",
          "[bandwidth][interop]") {
  const std::string reference = std::string(strait::test::kReferenceDir) + "/bandwidth";
  REQUIRE(fs::exists(reference));
  for (PodKind kind : kHostVethKinds) {
    DYNAMIC_SECTION(strait::test::pod_kind_name(kind)) {
      PodWorld w(kind);
      w.attach();
      const std::string veth = w.host_veth();
      const std::string ifb = upstream_ifb_name(w.network, w.container_id);

      // ADD by the reference, DEL by ours: the same ifb, and ours also removes its qdiscs.
      json theirs = add_ok(w, bandwidth_conf(w, both_directions()), reference);
      CHECK(theirs.at("interfaces").back().at("name") == ifb);
      Observed o = observe(w.host, veth, ifb);
      REQUIRE(o.ifb.has_value());
      REQUIRE(o.root.has_value());
      REQUIRE(o.ingress.has_value());
      ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "our DEL");
      require_unshaped(observe(w.host, veth, ifb));

      // ADD by ours, DEL by the reference: it finds our ifb by the same name. (It deletes only
      // the ifb; the host veth's qdiscs go with the veth, as upstream always had it.)
      json ours = add_ok(w, bandwidth_conf(w, both_directions()));
      CHECK(ours.at("interfaces").back().at("name") == ifb);
      json ref_del = bandwidth_conf(w, both_directions());
      ref_del["cniVersion"] = "1.0.0";
      ok(run_bw(w, "DEL", ref_del, reference), "reference DEL");
      o = observe(w.host, veth, ifb);
      CHECK_FALSE(o.ifb.has_value());
      // Ours cleans up what the reference left, once more idempotently.
      ok(run_bw(w, "DEL", bandwidth_conf(w, both_directions())), "our DEL");
      require_unshaped(observe(w.host, veth, ifb));
    }
  }
}

TEST_CASE("bandwidth DEL with the pod netns gone deletes the host ifb", "[bandwidth]") {
  PodWorld w(PodKind::kPtp);
  w.attach();
  const std::string ifb = upstream_ifb_name(w.network, w.container_id);
  add_ok(w, bandwidth_conf(w, both_directions()));
  const std::string path = w.pod->path();
  w.detach();
  w.prev = nullptr;  // the pod is gone: nothing for the fixture to DEL
  w.pod->remove();
  for (const std::string& netns : {path, std::string()}) {
    cni::EnvMap env = plugin_env("DEL", w.container_id, netns, w.ifname);
    PluginRun r =
        run_plugin(bin("bandwidth"), env,
                   json{{"cniVersion", "1.0.0"}, {"name", w.network}, {"type", "bandwidth"}}.dump(),
                   w.host.name());
    ok(r, "DEL");
    CHECK(sh("ip -n " + w.host.name() + " link show " + ifb + " >/dev/null 2>&1") != 0);
  }
}

TEST_CASE("bandwidth GC deletes the ifbs of this network's attachments not in the list",
          "[bandwidth][gc]") {
  PodWorld a(PodKind::kPtp);
  a.attach();
  // A second pod on the same host and network, and a third of another network.
  TempNetns pod_b("gcb");
  TempNetns pod_c("gcc");
  auto attach_in_a = [&](const TempNetns& pod, const std::string& cid, const std::string& network,
                         const std::string& subnet) {
    json c = {{"cniVersion", "1.0.0"},
              {"name", network},
              {"type", "ptp"},
              {"ipam", {{"type", "host-local"}, {"subnet", subnet}, {"dataDir", a.data.path()}}}};
    cni::EnvMap env = plugin_env("ADD", cid, pod.path(), "eth0");
    env["CNI_PATH"] = strait::test::kReferenceDir;
    PluginRun r =
        run_plugin(std::string(strait::test::kReferenceDir) + "/ptp", env, c.dump(), a.host.name());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    json bw = {{"cniVersion", "1.0.0"},
               {"name", network},
               {"type", "bandwidth"},
               {"prevResult", r.json()}};
    bw.update(both_directions());
    cni::EnvMap benv = plugin_env("ADD", cid, pod.path(), "eth0");
    PluginRun s = run_plugin(bin("bandwidth"), benv, bw.dump(), a.host.name());
    INFO(s.out << s.err);
    REQUIRE(s.exit_code == 0);
  };
  add_ok(a, bandwidth_conf(a, both_directions()));
  const std::string cid_b = unique_name("gcb", 40);
  const std::string cid_c = unique_name("gcc", 40);
  const std::string other_network = unique_name("gcother", 40);
  attach_in_a(pod_b, cid_b, a.network, "10.125.0.0/24");
  attach_in_a(pod_c, cid_c, other_network, "10.126.0.0/24");
  // An ifb upstream made (no alias): GC cannot tell whose it is and leaves it.
  const std::string upstream_made = upstream_ifb_name(a.network, "someone-else");
  a.host.exec("ip link add " + upstream_made + " type ifb");

  const std::string ifb_a = upstream_ifb_name(a.network, a.container_id);
  const std::string ifb_b = upstream_ifb_name(a.network, cid_b);
  const std::string ifb_c = upstream_ifb_name(other_network, cid_c);
  auto has = [&](const std::string& name) {
    return sh("ip -n " + a.host.name() + " link show " + name + " >/dev/null 2>&1") == 0;
  };
  REQUIRE((has(ifb_a) && has(ifb_b) && has(ifb_c)));

  // Without a valid list, GC deletes nothing.
  json gc = {{"cniVersion", "1.1.0"}, {"name", a.network}, {"type", "bandwidth"}};
  ok(run_plugin(bin("bandwidth"), plugin_env("GC", "", "", ""), gc.dump(), a.host.name()), "GC");
  CHECK((has(ifb_a) && has(ifb_b) && has(ifb_c)));

  gc["cni.dev/valid-attachments"] =
      json::array({{{"containerID", a.container_id}, {"ifname", "eth0"}}});
  ok(run_plugin(bin("bandwidth"), plugin_env("GC", "", "", ""), gc.dump(), a.host.name()), "GC");
  CHECK(has(ifb_a));
  CHECK_FALSE(has(ifb_b));
  CHECK(has(ifb_c));          // another network's
  CHECK(has(upstream_made));  // no alias
  // b's host veth lost its redirect and its tbf along with the ifb.
  const Observed ob = observe(a.host, host_end(a.host, pod_b, "eth0"), ifb_b);
  require_unshaped(ob);
  // a is untouched.
  require_shaped(observe(a.host, a.host_veth(), ifb_a),
                 expected_tbf(kIngressRate, kIngressBurst, 1500),
                 expected_tbf(kEgressRate, kContainerdBurst, 1500), ifb_a,
                 "strait-bandwidth " + a.network + " " + a.container_id + " eth0");
}

namespace {

class NoExec : public cni::ExecRunner {
 public:
  cni::ExecResult run(const std::string&, const cni::EnvMap&, std::string_view) override {
    return {127, "", "no exec in this test"};
  }
};

// cmd_add in-process, in the world's host netns, with a fake sysfs (the VF lookup seam).
struct InProcess {
  InProcess(const PodWorld& world, std::string sysfs_root)
      : w(world), sysfs(std::move(sysfs_root)) {}
  const PodWorld& w;
  std::string sysfs;
  std::ostringstream log_out;
  cni::Logger log{log_out};
  NoExec exec;

  void add(const json& conf) {
    cni::EnvMap envmap = plugin_env("ADD", w.container_id, w.pod->path(), w.ifname);
    cni::Env env = cni::parse_env(envmap);
    const std::string text = conf.dump();
    cni::NetConf nc = cni::parse_netconf(text, cni::supported_versions());
    cni::CmdArgs args{env, nc, text, envmap, log, exec};
    cni::Netns host = cni::Netns::open(w.host.path());
    cni::NetnsGuard in_host(host);
    bandwidth::cmd_add(args, bandwidth::System{sysfs});
  }
};

}  // namespace

TEST_CASE("useVfRate maps egress to the VF's max_tx_rate through its PF", "[bandwidth][vf]") {
  PodWorld w(PodKind::kVfStandIn, "net1");
  w.attach();
  // The PF: a veth in the host netns. sysfs says the pod's device is its VF 1.
  const std::string pf = unique_name("pf");
  w.host.exec("ip link add " + pf + " type veth peer name " + unique_name("pfp"));
  TempDir sysfs("strait-sysfs");
  const fs::path devices = fs::path(sysfs.path()) / "bus/pci/devices";
  fs::create_directories(devices / "0000:05:00.0/net" / pf);
  fs::create_directories(devices / "0000:05:10.1");
  fs::create_symlink("../0000:05:00.0", devices / "0000:05:10.1/physfn");
  fs::create_symlink("../0000:05:10.1", devices / "0000:05:00.0/virtfn1");
  const std::string before = ns_state(w.host) + ns_state(*w.pod);
  InProcess ip{w, sysfs.path()};

  json c = bandwidth_conf(w, both_directions());
  c["useVfRate"] = true;
  c["runtimeConfig"] = {{"deviceID", "0000:05:10.1"}};
  // This kernel has no SR-IOV: the PF (a veth) refuses IFLA_VF_RATE, the ADD fails naming
  // the VF and the PF, and nothing is left (the ingress ifb is not even made).
  try {
    ip.add(c);
    FAIL("ADD succeeded without an SR-IOV PF");
  } catch (const cni::NetlinkError& e) {
    CHECK(e.sys_errno() == EOPNOTSUPP);
    CHECK_THAT(e.what(), Catch::StartsWith("failed to set min_tx_rate 0 Mbps, max_tx_rate 16 Mbps "
                                           "of VF 1 of PF \"" +
                                           pf + "\""));
  }
  CHECK(ns_state(w.host) + ns_state(*w.pod) == before);

  auto config_error = [&](const json& conf, const std::string& words) {
    try {
      ip.add(conf);
      FAIL("ADD succeeded");
    } catch (const cni::Error& e) {
      CHECK(e.code() == 7);
      CHECK_THAT(e.msg(), Catch::Contains(words));
    }
    CHECK(ns_state(w.host) + ns_state(*w.pod) == before);
  };
  json no_id = c;
  no_id.erase("runtimeConfig");
  config_error(no_id, "\"useVfRate\": the VF's PCI address is needed");
  json not_vf = c;
  not_vf["runtimeConfig"]["deviceID"] = "0000:05:00.0";
  config_error(not_vf, "\"deviceID\": \"0000:05:00.0\" is not an SR-IOV VF");
  json top_level = no_id;
  top_level["deviceID"] = "0000:07:00.0";  // injected at the top level, as multus does
  config_error(top_level, "\"0000:07:00.0\" is not an SR-IOV VF");
}

TEST_CASE("useVfRate on a veth pod with a host end is a config error", "[bandwidth][vf]") {
  PodWorld w(PodKind::kPtp);
  w.attach();
  json c = bandwidth_conf(w, both_directions());
  c["useVfRate"] = true;
  const std::string before = ns_state(w.host);
  PluginRun r = run_bw(w, "ADD", c);
  CHECK(r.exit_code == 1);
  CHECK(r.json().at("code") == 7);
  CHECK_THAT(r.json().value("msg", ""), Catch::Contains("\"useVfRate\""));
  CHECK(ns_state(w.host) == before);
}

TEST_CASE("bandwidth STATUS answers for a valid config and refuses a bad one; VERSION",
          "[bandwidth]") {
  TempNetns host("bws");
  json c = {{"cniVersion", "1.1.0"}, {"name", unique_name("bwst", 40)}, {"type", "bandwidth"}};
  c.update(both_directions());
  PluginRun ok_status =
      run_plugin(bin("bandwidth"), plugin_env("STATUS", "", "", ""), c.dump(), host.name());
  INFO(ok_status.out << ok_status.err);
  CHECK(ok_status.exit_code == 0);
  CHECK(ok_status.out.empty());
  c["egressBurst"] = -1;
  PluginRun bad =
      run_plugin(bin("bandwidth"), plugin_env("STATUS", "", "", ""), c.dump(), host.name());
  CHECK(bad.exit_code == 1);
  CHECK(bad.json().at("code") == 7);
  PluginRun v = run_plugin(bin("bandwidth"), plugin_env("VERSION", "", "", ""),
                           R"({"cniVersion":"1.1.0"})", host.name());
  REQUIRE(v.exit_code == 0);
  CHECK(v.json().at("supportedVersions") ==
        json::array({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}
