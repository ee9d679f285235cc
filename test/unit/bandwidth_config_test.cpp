#include <catch2/catch.hpp>
#include <string>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/protocol/netconf.h"
#include "libcni/protocol/version.h"
#include "plugins/bandwidth/bandwidth.h"
#include "plugins/bandwidth/bandwidth_config.h"
#include "plugins/bandwidth/tbf_sizing.h"

namespace {

using nlohmann::json;

bandwidth::BandwidthConfig parse(const json& extra) {
  json c = {{"cniVersion", "1.0.0"}, {"name", "net"}, {"type", "bandwidth"}};
  c.update(extra);
  return bandwidth::parse_config(cni::parse_netconf(c.dump(), cni::supported_versions()));
}

// The config error of `extra`: code 7 and a message holding every word.
void refused(const json& extra, const std::vector<std::string>& words) {
  INFO(extra.dump());
  try {
    parse(extra);
    FAIL("accepted");
  } catch (const cni::Error& e) {
    CHECK(e.code() == cni::kErrInvalidConfig);
    for (const auto& w : words) CHECK_THAT(e.msg(), Catch::Contains(w));
  }
}

}  // namespace

TEST_CASE("bandwidth config: static keys win over runtimeConfig, as upstream", "[bandwidth]") {
  const json rt = {
      {"runtimeConfig", {{"bandwidth", {{"ingressRate", 1000}, {"ingressBurst", 2000}}}}}};
  auto c = parse(rt);
  CHECK(c.source == bandwidth::Source::kRuntimeConfig);
  CHECK(c.ingress == bandwidth::Limit{1000, 2000});
  CHECK_FALSE(c.egress.shaped());

  json both = rt;
  both["egressRate"] = 3000;
  both["egressBurst"] = 4000;
  c = parse(both);
  CHECK(c.source == bandwidth::Source::kStatic);
  CHECK_FALSE(c.ingress.shaped());  // runtimeConfig is not read at all then
  CHECK(c.egress == bandwidth::Limit{3000, 4000});

  // Any key of the entry makes the top level the source, even a zero one.
  json zero = rt;
  zero["ingressRate"] = 0;
  c = parse(zero);
  CHECK(c.source == bandwidth::Source::kStatic);
  CHECK(c.is_zero());
  CHECK(parse(json::object()).source == bandwidth::Source::kNone);
  CHECK(parse(json::object()).is_zero());
}

TEST_CASE("bandwidth config: upstream's validation, naming the key and the value", "[bandwidth]") {
  refused({{"ingressRate", 1000}}, {"\"ingressBurst\"", "if rate is set, burst must also be set"});
  refused({{"egressBurst", 1000}}, {"\"egressRate\"", "if burst is set, rate must also be set"});
  refused({{"runtimeConfig", {{"bandwidth", {{"egressRate", 10}}}}}},
          {"\"runtimeConfig.bandwidth.egressBurst\"", "10"});
  refused({{"ingressRate", 1000}, {"ingressBurst", 34359738360}},
          {"\"ingressBurst\"", "34359738360", "burst cannot be more than 4GB"});
  refused({{"ingressRate", -5}, {"ingressBurst", 10}}, {"\"ingressRate\"", "-5", "negative"});
  refused({{"ingressRate", "10M"}, {"ingressBurst", 10}}, {"\"ingressRate\"", "\"10M\""});
  refused({{"ingressRate", 1.5}, {"ingressBurst", 10}}, {"\"ingressRate\"", "1.5"});
  refused({{"ingressRate", 7}, {"ingressBurst", 10}}, {"\"ingressRate\"", "7 bits/s"});
  refused({{"egressRate", 34359738368}, {"egressBurst", 10}},
          {"\"egressRate\"", "34359738368", "largest rate"});
  refused({{"unshapedSubnets", {"10.0.0.0/8"}}}, {"\"unshapedSubnets\"", "10.0.0.0/8"});
  refused({{"maxBurst", 0}}, {"\"maxBurst\"", "0"});
  refused({{"maxBurst", -1}}, {"\"maxBurst\"", "-1"});
  refused({{"latencyMs", 0}}, {"\"latencyMs\"", "0"});
  refused({{"latencyMs", "3"}}, {"\"latencyMs\"", "\"3\""});
  refused({{"latencyMs", 5000}}, {"\"latencyMs\"", "5000"});
  refused({{"useVfRate", "yes"}}, {"\"useVfRate\"", "\"yes\""});
  // The largest values that fit.
  auto c = parse({{"ingressRate", 34359738360}, {"ingressBurst", 34359738359}});
  CHECK(c.ingress.rate == 34359738360u);
  CHECK(parse({{"latencyMs", 0.5}}).latency_ms == 0.5);
  CHECK(parse({{"unshapedSubnets", json::array()}}).source == bandwidth::Source::kStatic);
}

TEST_CASE("bandwidth config: the VF's PCI address from runtimeConfig, else the top level",
          "[bandwidth]") {
  CHECK(parse({{"deviceID", "0000:01:00.1"}}).device_id == "0000:01:00.1");
  CHECK(parse({{"deviceID", "0000:01:00.1"}, {"runtimeConfig", {{"deviceID", "0000:02:00.1"}}}})
            .device_id == "0000:02:00.1");
  // DEL's lenient reading never throws.
  json bad = {{"cniVersion", "1.0.0"}, {"name", "n"}, {"type", "bandwidth"}, {"useVfRate", 3}};
  auto d = bandwidth::parse_del_config(cni::parse_netconf(bad.dump(), cni::supported_versions()));
  CHECK_FALSE(d.use_vf_rate);
}

TEST_CASE("bandwidth sizing: a queue in time, a capped bucket, a peak rate", "[bandwidth]") {
  using bandwidth::Sizing;
  // 100 Mbit/s: the queue is 4 ms (50000 B) and 6 frames; the containerd burst is capped to
  // 20 ms.
  auto t = bandwidth::size_tbf({100000000, 4294967295}, Sizing{});
  CHECK(t.params.rate == 12500000);
  CHECK(t.params.limit == 50000 + 6 * 1514);
  CHECK(t.params.burst == 250000);
  CHECK(t.params.peakrate == 15000000);
  CHECK(t.params.mtu == 29542);  // 2 ms at the peak rate (30000 B), but half the queue at most
  CHECK_THAT(t.note, Catch::Contains("burst 4294967295 bits capped to 2000000 bits"));
  // 10 Mbit/s: 4 ms is 5000 B, about 3 frames: the 6 on top make it 9.3 frames (11.3 ms).
  t = bandwidth::size_tbf({10000000, 40000}, Sizing{});
  CHECK(t.params.limit == 5000 + 6 * 1514);
  CHECK(t.params.burst == 5000);    // asked for, and under the cap
  CHECK(t.params.mtu == 2 * 1514);  // 2 ms at the peak rate is less than 2 frames
  CHECK(t.note.empty());
  // A burst below two frames is raised (and said).
  t = bandwidth::size_tbf({10000000, 800}, Sizing{});
  CHECK(t.params.burst == 3028);
  CHECK_THAT(t.note, Catch::Contains("raised to 24224 bits"));
  // maxBurst and latencyMs as given; a jumbo MTU makes bigger frames.
  t = bandwidth::size_tbf({800000000, 8000000},
                          Sizing{.latency_ms = 1, .max_burst = 400000, .mtu = 9000});
  CHECK(t.params.limit == 100000 + 6 * 9014);
  CHECK(t.params.burst == 50000);
  CHECK(t.params.mtu == 74550);  // a GSO packet and a frame (half the queue would be 77042)
  CHECK_THAT(t.note, Catch::Contains("(maxBurst)"));
  // No peak rate where 1.2x the rate does not fit 32 bits.
  t = bandwidth::size_tbf({34359738360, 1000000}, Sizing{});
  CHECK(t.params.peakrate == 0);
}

TEST_CASE("bandwidth sizing: every packet tbf passes uncut fits the queue twice", "[bandwidth]") {
  // A packet that fits the buckets is not cut; one larger than the queue is then dropped whole.
  for (uint64_t mbit : {1, 8, 10, 33, 100, 250, 500, 1000, 10000, 25000}) {
    for (uint64_t burst_ms : {1, 4, 100}) {
      for (int mtu : {1500, 9000}) {
        const uint64_t rate = mbit * 1000000;
        auto t = bandwidth::size_tbf(
            {rate, std::min<uint64_t>(rate / 1000 * burst_ms, 34359738359)},
            {.latency_ms = bandwidth::kDefaultLatencyMs, .max_burst = std::nullopt, .mtu = mtu});
        INFO(mbit << " Mbit/s, burst " << burst_ms << " ms, MTU " << mtu << ": "
                  << cni::tbf_qdisc(1, t.params).str());
        const uint32_t uncut =
            t.params.peakrate ? std::min(t.params.burst, t.params.mtu) : t.params.burst;
        CHECK(2 * std::min<uint32_t>(uncut, 65536 + mtu + 14) <= t.params.limit);
        CHECK(t.params.burst >= 2 * static_cast<uint32_t>(mtu + 14));
      }
    }
  }
}

TEST_CASE("bandwidth VF rates are whole Mbit/s, at least 1", "[bandwidth]") {
  std::string note;
  CHECK(bandwidth::vf_rate_mbps(100000000, &note) == 100);
  CHECK(note.empty());
  CHECK(bandwidth::vf_rate_mbps(1500000, &note) == 2);
  CHECK_THAT(note, Catch::Contains("2 Mbit/s"));
  CHECK(bandwidth::vf_rate_mbps(1000, &note) == 1);
}

TEST_CASE("bandwidth device names: upstream's ifb name, and ours in the pod", "[bandwidth]") {
  // What the reference plugin (Debian 1.1.1) named the ifb of network "bwrnet", container
  // "abc123" (read from `ip link` after its ADD).
  CHECK(bandwidth::host_ifb_name("bwrnet", "abc123") == "bwp2bf1d4e36122");
  const std::string pod = bandwidth::pod_ifb_name("bwrnet", "abc123", "net1");
  CHECK(pod.size() == 15);
  CHECK(pod.rfind("bwi", 0) == 0);
  CHECK(pod != bandwidth::pod_ifb_name("bwrnet", "abc123", "net2"));
  CHECK(bandwidth::ifb_alias("n", "c", "eth0") == "strait-bandwidth n c eth0");
}
