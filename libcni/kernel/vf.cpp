#include "libcni/kernel/vf.h"

#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace cni {

namespace fs = std::filesystem;

namespace {

// A PCI address as sysfs names it: no separators that would leave bus/pci/devices/.
void check_pci_name(std::string_view pci) {
  if (pci.empty() || pci == "." || pci == ".." || pci.find('/') != std::string_view::npos ||
      pci.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("\"" + std::string(pci) + "\" is not a PCI address");
  }
}

[[noreturn]] void inconsistent(const fs::path& path, const std::string& why) {
  throw std::system_error(ENOENT, std::generic_category(), "sysfs " + path.string() + " " + why);
}

}  // namespace

std::optional<VfLocation> find_vf(std::string_view vf_pci, std::string_view sysfs_root) {
  check_pci_name(vf_pci);
  const fs::path devices = fs::path(sysfs_root) / "bus" / "pci" / "devices";
  const fs::path physfn = devices / vf_pci / "physfn";
  std::error_code ec;
  const fs::path pf_target = fs::read_symlink(physfn, ec);
  if (ec) return std::nullopt;  // no such device, or not a VF

  VfLocation vf;
  vf.pci = std::string(vf_pci);
  vf.pf_pci = pf_target.filename().string();
  const fs::path pf_dir = devices / vf.pf_pci;
  for (const auto& entry : fs::directory_iterator(pf_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("virtfn", 0) != 0) continue;
    std::error_code link_ec;
    if (fs::read_symlink(entry.path(), link_ec).filename() != vf.pci || link_ec) continue;
    try {
      vf.vf_index = std::stoi(name.substr(6));
    } catch (const std::exception&) {
      continue;
    }
    break;
  }
  if (vf.vf_index < 0) inconsistent(pf_dir, "has no virtfn link to " + vf.pci);
  for (const auto& entry : fs::directory_iterator(pf_dir / "net", ec)) {
    vf.pf_netdev = entry.path().filename().string();
    break;
  }
  if (vf.pf_netdev.empty()) inconsistent(pf_dir / "net", "names no network device of the PF");
  return vf;
}

void set_vf_rate(NlSocket& sock, const LinkRef& pf, int vf_index, uint32_t max_tx_mbps,
                 uint32_t min_tx_mbps) {
  if (vf_index < 0) throw std::invalid_argument("a VF index is not negative");
  const std::string what = "failed to set the rate of VF " + std::to_string(vf_index) +
                           " of link " + pf.str() + " to " + std::to_string(max_tx_mbps) +
                           " Mbit/s";
  const int index = resolve_link_index(sock, pf);
  RtnlLinkPtr orig(rtnl_link_alloc());
  RtnlLinkPtr change(rtnl_link_alloc());
  RtnlLinkVfPtr vf(rtnl_link_vf_alloc());
  if (!orig || !change || !vf) throw std::bad_alloc();
  rtnl_link_set_ifindex(orig.get(), index);
  rtnl_link_vf_set_index(vf.get(), static_cast<uint32_t>(vf_index));
  // IFLA_VF_RATE (min and max, Linux 3.16+), not the older IFLA_VF_TX_RATE (max only).
  nl_vf_rate rate{};
  rate.api = RTNL_LINK_VF_RATE_API_NEW;
  rate.max_tx_rate = max_tx_mbps;
  rate.min_tx_rate = min_tx_mbps;
  rtnl_link_vf_set_rate(vf.get(), &rate);
  if (int rc = rtnl_link_vf_add(change.get(), vf.get()); rc < 0) throw NetlinkError(what, rc);
  const int rc =
      sock.call([&](nl_sock* s) { return rtnl_link_change(s, orig.get(), change.get(), 0); });
  if (rc < 0) throw sock.error(what, rc);
}

}  // namespace cni
