#include "libcni/kernel/sysfs.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <sstream>
#include <system_error>

#include "libcni/core/read_file.h"

namespace cni {

namespace fs = std::filesystem;

namespace {

bool hex_digits(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

int hex_value(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v, 16);
  return v;
}

// The name of what the symbolic link `link` leads to (its resolved path's last component:
// "0000:af:00.0" for physfn, "vfio-pci" for driver); nullopt when `link` is missing, no link,
// or dangling. Other failures (EACCES) throw std::filesystem::filesystem_error.
std::optional<std::string> link_target_name(const fs::path& link) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(link, ec);
  if (ec || !fs::is_symlink(st)) {
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
      throw fs::filesystem_error("failed to read link", link, ec);
    }
    return std::nullopt;
  }
  const fs::path target = fs::canonical(link, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return std::nullopt;
    throw fs::filesystem_error("failed to resolve link", link, ec);
  }
  return target.filename().string();
}

std::vector<std::string> directory_names(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return out;
    throw fs::filesystem_error("failed to list", dir, ec);
  }
  for (const auto& e : it) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool is_pci_address(std::string_view s) {
  // dddd:bb:dd.f
  if (s.size() != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') return false;
  if (!hex_digits(s.substr(0, 4), 4) || !hex_digits(s.substr(5, 2), 2) ||
      !hex_digits(s.substr(8, 2), 2)) {
    return false;
  }
  if (hex_value(s.substr(8, 2)) > 0x1f) return false;  // 5 bits of device
  return s[11] >= '0' && s[11] <= '7';                 // 3 bits of function
}

std::string Sysfs::pci_device_path(const std::string& address) const {
  return root_ + "/bus/pci/devices/" + address;
}

bool Sysfs::pci_device_exists(const std::string& address) const {
  std::error_code ec;
  return fs::exists(pci_device_path(address), ec);
}

std::optional<std::string> Sysfs::pci_physfn(const std::string& vf) const {
  return link_target_name(fs::path(pci_device_path(vf)) / "physfn");
}

std::map<int, std::string> Sysfs::pci_virtfns(const std::string& pf) const {
  std::map<int, std::string> out;
  const fs::path dir = pci_device_path(pf);
  for (const std::string& name : directory_names(dir)) {
    if (name.rfind("virtfn", 0) != 0) continue;
    std::string_view digits = std::string_view(name).substr(6);
    int index = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) continue;
    if (auto target = link_target_name(dir / name)) out.emplace(index, *target);
  }
  return out;
}

std::optional<int> Sysfs::pci_vf_index(const std::string& pf, const std::string& vf) const {
  for (const auto& [index, address] : pci_virtfns(pf)) {
    if (address == vf) return index;
  }
  return std::nullopt;
}

std::vector<std::string> Sysfs::pci_netdevs(const std::string& address) const {
  return directory_names(fs::path(pci_device_path(address)) / "net");
}

std::optional<std::string> Sysfs::pci_driver(const std::string& address) const {
  return link_target_name(fs::path(pci_device_path(address)) / "driver");
}

std::optional<int> Sysfs::pci_sriov_numvfs(const std::string& pf) const {
  const auto text = read_whole_file((fs::path(pci_device_path(pf)) / "sriov_numvfs").string());
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  int n = 0;
  if (!(in >> n)) return std::nullopt;
  return n;
}

std::optional<BusDevice> Sysfs::netdev_device(const std::string& ifname) const {
  const fs::path device = fs::path(root_) / "class/net" / ifname / "device";
  auto name = link_target_name(device);
  if (!name) return std::nullopt;
  auto bus = link_target_name(device / "subsystem");
  if (!bus) return std::nullopt;
  return BusDevice{*bus, *name};
}

}  // namespace cni
