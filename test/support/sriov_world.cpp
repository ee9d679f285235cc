#include "test/support/sriov_world.h"

#include <filesystem>

#include "libcni/kernel/link.h"
#include "libcni/kernel/netlink.h"
#include "libcni/kernel/netns.h"

namespace strait::test {

namespace fs = std::filesystem;
using nlohmann::json;

SriovNode::SriovNode(int vfs, int dpdk_vf)
    : tree_(root.path() + "/sys"), pf_(fake_pf_state_path(root.path() + "/sys")) {
  const std::string ns = "ip -n " + host.name() + " ";
  sh_ok(ns + "link add " + kPf + " type veth peer name svpfp");
  tree_.add_pf(kPfAddress, kPf);
  for (int i = 0; i < vfs; ++i) {
    if (i == dpdk_vf) {
      tree_.add_vf(kPfAddress, i, vf_address(i), "", "vfio-pci");
      continue;
    }
    const std::string vf = vf_netdev(i);
    sh_ok(ns + "link add " + vf + " address 02:5f:00:00:00:0" + std::to_string(i) +
          " type veth peer name svvp" + std::to_string(i));
    if (i == 1) sh_ok(ns + "link set " + vf + " mtu 9000");
    if (i == 2) sh_ok(ns + "link set " + vf + " up");
    tree_.add_vf(kPfAddress, i, vf_address(i), vf, "iavf");
  }
  pf_.add_pf(kPf, vfs);
}

json SriovNode::conf(int vf, const json& patch) const {
  json range = {{"subnet", "192.0.2.0/24"},
                {"rangeStart", "192.0.2.10"},
                {"rangeEnd", "192.0.2.250"},
                {"gateway", "192.0.2.1"}};
  json c = {{"cniVersion", "1.1.0"},
            {"name", network},
            {"type", "sriov"},
            {"deviceID", vf_address(vf)},
            {"dataDir", data_dir()},
            {"sysfsRoot", sysfs()},
            {"ipam",
             {{"type", "host-local"},
              {"dataDir", lease_dir()},
              {"ranges", json::array({json::array({range})})},
              {"routes", json::array({{{"dst", "198.51.100.0/24"}}})}}}};
  c.merge_patch(patch);
  return c;
}

PluginRun SriovNode::run(const std::string& verb, const std::string& netns, const std::string& cid,
                         const std::string& ifname, const json& conf,
                         const std::string& cni_args) const {
  return run_plugin(test_bin("sriov-fakepf"), plugin_env(verb, cid, netns, ifname, cni_args),
                    conf.dump(), host.name());
}

SriovNode::VfState SriovNode::vf_state(int i) const {
  VfState s;
  s.vf = pf_.vf(kPf, i);
  const cni::Netns ns = cni::Netns::open(host.path());
  cni::NlSocket sock = cni::NlSocket::in(ns);
  if (auto link = cni::find_link(sock, vf_netdev(i))) {
    s.on_host = true;
    s.mac = link->mac;
    s.mtu = link->mtu;
    s.up = link->up;
  }
  return s;
}

std::set<std::string> SriovNode::state_files() const {
  std::set<std::string> out;
  if (!fs::exists(data_dir())) return out;
  for (const auto& e : fs::recursive_directory_iterator(data_dir())) {
    const std::string rel = fs::relative(e.path(), data_dir()).string();
    if (rel.rfind("pci/vf_lock", 0) == 0 || !e.is_regular_file()) continue;
    out.insert(rel);
  }
  return out;
}

std::set<std::string> SriovNode::leases() const {
  std::set<std::string> out;
  const fs::path dir = fs::path(lease_dir()) / network;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n == "lock" || n.rfind("last_reserved_ip", 0) == 0 || n == ".strait") continue;
    out.insert(n + "=" + read_file(e.path().string()));
  }
  return out;
}

std::string describe(const SriovNode::VfState& s) {
  const cni::VfInfo& v = s.vf;
  std::string out = "VF " + std::to_string(v.index) + ": mac " + v.mac.str() + " vlan " +
                    std::to_string(v.vlan) + " qos " + std::to_string(v.qos) + " proto " +
                    cni::vlan_proto_name(v.vlan_proto) + " rate " + std::to_string(v.min_tx_rate) +
                    "/" + std::to_string(v.max_tx_rate) + " spoofchk " +
                    (v.spoofchk ? (*v.spoofchk ? "on" : "off") : "?") + " trust " +
                    (v.trust ? (*v.trust ? "on" : "off") : "?") + " state " +
                    std::string(cni::to_string(v.link_state));
  if (!s.on_host) return out + "; netdev not on the host";
  return out + "; netdev mac " + s.mac + " mtu " + std::to_string(s.mtu) + (s.up ? " up" : " down");
}

}  // namespace strait::test
