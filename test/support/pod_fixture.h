#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "test/support/harness.h"

// Pods for the chained plugins' tests (bandwidth): a "host" netns and a pod netns joined the
// way a real first plugin joins them, and that plugin's result, which the chained plugin gets
// as prevResult. Every device and address lives in namespaces made here (TEST-NET or
// 10.x ranges inside them only).
//
//   kBridge    the reference bridge (/usr/lib/cni/bridge + host-local): a veth whose host end
//              is enslaved to a bridge in the host netns
//   kPtp       the reference ptp: a routed veth
//   kMacvlan   our macvlan on a veth master "mst0" of the host netns (our host-local)
//   kVfStandIn a veth whose peer sits in a third ("wire") netns: no host end, as an SR-IOV VF
//              moved into the pod; its "result" is written here
//   kVxlan     our vxlan (global-ipam on a file store in the pod world's data dir): a routed
//              veth, the host netns a node whose underlay is a veth "ul0" (192.0.2.10/24) to
//              nowhere
namespace strait::test {

enum class PodKind { kBridge, kPtp, kMacvlan, kVfStandIn, kVxlan };

inline const char* pod_kind_name(PodKind k) {
  switch (k) {
    case PodKind::kBridge:
      return "reference bridge";
    case PodKind::kPtp:
      return "reference ptp";
    case PodKind::kMacvlan:
      return "our macvlan";
    case PodKind::kVfStandIn:
      return "veth standing in for a VF";
    case PodKind::kVxlan:
      return "our vxlan";
  }
  return "?";
}

inline constexpr char kReferenceDir[] = "/usr/lib/cni";

struct PodWorld {
  PodKind kind;
  TempNetns host{"pwh"};
  std::unique_ptr<TempNetns> pod = std::make_unique<TempNetns>("pwp");
  std::optional<TempNetns> wire;
  TempDir data{"strait-pod"};
  std::string network = unique_name("pwnet", 40);
  std::string container_id = unique_name("pwcid", 40);
  std::string ifname;
  std::string bridge = unique_name("pwbr");
  nlohmann::json prev;  // the first plugin's ADD result
  std::string version = "1.0.0";

  explicit PodWorld(PodKind k, std::string ifname_ = "eth0") : kind(k), ifname(std::move(ifname_)) {
    host.exec("ip link set lo up");
    if (kind == PodKind::kMacvlan) {
      host.exec(
          "ip link add mst0 type veth peer name gw0 && ip link set mst0 up && ip link set "
          "gw0 up");
    }
    if (kind == PodKind::kVxlan) {
      host.exec(
          "ip link add ul0 type veth peer name ul1 && ip link set ul1 up && ip addr add "
          "192.0.2.10/24 dev ul0 && ip link set ul0 up && ip route add default via 192.0.2.1");
    }
  }

  // The first plugin's config (what the conflist's first entry would hold).
  nlohmann::json first_conf() const {
    using nlohmann::json;
    switch (kind) {
      case PodKind::kBridge:
        return {{"cniVersion", version},
                {"name", network},
                {"type", "bridge"},
                {"bridge", bridge},
                {"isGateway", true},
                {"ipam",
                 {{"type", "host-local"}, {"subnet", "10.123.0.0/24"}, {"dataDir", data.path()}}}};
      case PodKind::kPtp:
        return {{"cniVersion", version},
                {"name", network},
                {"type", "ptp"},
                {"ipam",
                 {{"type", "host-local"}, {"subnet", "10.124.0.0/24"}, {"dataDir", data.path()}}}};
      case PodKind::kMacvlan:
        return {{"cniVersion", version},
                {"name", network},
                {"type", "macvlan"},
                {"master", "mst0"},
                {"ipam",
                 {{"type", "host-local"},
                  {"dataDir", data.path()},
                  {"ranges", json::array({json::array({{{"subnet", "192.0.2.0/24"}}})})}}}};
      case PodKind::kVxlan:
        return {{"cniVersion", version},
                {"name", network},
                {"type", "vxlan"},
                {"underlayInterface", "ul0"},
                {"ipam",
                 {{"type", "global-ipam"},
                  {"nodeName", "pwnode"},
                  {"pools",
                   json::array({{{"name", "v4"}, {"cidr", "10.125.0.0/24"}, {"blockSize", 28}}})},
                  {"store", {{"type", "file"}, {"path", data.path() + "/store"}}},
                  {"nodeLockDir", data.path() + "/locks"}}}};
      case PodKind::kVfStandIn:
        return nullptr;
    }
    return nullptr;
  }

  // The first plugin's binary and CNI_PATH (the reference plugins find the reference
  // host-local; ours find ours).
  std::string first_binary() const {
    const std::string type = first_conf()["type"].get<std::string>();
    return ours() ? bin(type) : std::string(kReferenceDir) + "/" + type;
  }
  std::string cni_path() const {
    return ours() ? std::filesystem::path(bin("macvlan")).parent_path().string()
                  : std::string(kReferenceDir);
  }
  bool ours() const { return kind == PodKind::kMacvlan || kind == PodKind::kVxlan; }

  PluginRun run_first(const std::string& verb) const {
    cni::EnvMap env = plugin_env(verb, container_id, pod->path(), ifname);
    env["CNI_PATH"] = cni_path();
    nlohmann::json c = first_conf();
    if (verb != "ADD" && !prev.is_null()) c["prevResult"] = prev;
    return run_plugin(first_binary(), env, c.dump(), host.name());
  }

  // Attaches the pod (the first plugin's ADD); throws with the plugin's output on failure.
  void attach() {
    if (kind == PodKind::kVfStandIn) {
      wire.emplace("pww");
      pod->exec("ip link add " + ifname + " type veth peer name vfw0 netns " + wire->name());
      pod->exec("ip addr add 198.51.100.2/24 dev " + ifname + " && ip link set " + ifname +
                " up && ip link set lo up");
      wire->exec("ip addr add 198.51.100.1/24 dev vfw0 && ip link set vfw0 up");
      const std::string mac = pod->exec("cat /sys/class/net/" + ifname + "/address");
      prev = {{"cniVersion", version},
              {"interfaces", nlohmann::json::array({{{"name", ifname},
                                                     {"mac", mac.substr(0, mac.find('\n'))},
                                                     {"sandbox", pod->path()}}})},
              {"ips", nlohmann::json::array({{{"address", "198.51.100.2/24"}, {"interface", 0}}})}};
      return;
    }
    PluginRun r = run_first("ADD");
    if (r.exit_code != 0) {
      throw std::runtime_error(std::string(pod_kind_name(kind)) + " ADD failed: " + r.out + r.err);
    }
    prev = r.json();
  }

  // The first plugin's DEL (the chain's last step); a VF stand-in just loses its veth.
  void detach() {
    if (kind == PodKind::kVfStandIn) {
      sh("ip -n " + pod->name() + " link del " + ifname + " 2>/dev/null");
      return;
    }
    run_first("DEL");
  }

  ~PodWorld() {
    try {
      if (kind != PodKind::kVfStandIn && !prev.is_null()) run_first("DEL");
    } catch (...) {
    }
  }

  // The host end of the pod's veth (bridge, ptp): the result's interface without sandbox.
  std::string host_veth() const {
    for (const auto& i : prev.at("interfaces")) {
      if (!i.contains("sandbox") && i.value("name", "") != bridge) return i.at("name");
    }
    return "";
  }
};

}  // namespace strait::test
