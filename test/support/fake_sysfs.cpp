#include "test/support/fake_sysfs.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace strait::test {

namespace fs = std::filesystem;

namespace {

void write(const fs::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text << "\n";
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// A symbolic link at `link` to `target` (relative, as sysfs's are), replacing one there.
void relink(const fs::path& target, const fs::path& link) {
  std::error_code ec;
  fs::remove(link, ec);
  fs::create_symlink(fs::relative(target, link.parent_path()), link);
}

}  // namespace

FakeSysfs::FakeSysfs(std::string root) : root_(std::move(root)) {
  for (const char* d : {"devices/pci0000:00", "bus/pci/devices", "bus/pci/drivers", "class/net"}) {
    fs::create_directories(fs::path(root_) / d);
  }
}

std::string FakeSysfs::device_dir(const std::string& address) const {
  return root_ + "/devices/pci0000:00/" + address;
}

void FakeSysfs::add_pf(const std::string& address, const std::string& netdev,
                       const std::string& driver) {
  const fs::path dir = device_dir(address);
  fs::create_directories(dir);
  relink(dir, fs::path(root_) / "bus/pci/devices" / address);
  relink(fs::path(root_) / "bus/pci", dir / "subsystem");
  write(dir / "sriov_numvfs", "0");
  write(dir / "sriov_totalvfs", "64");
  set_netdev(address, netdev);
  set_driver(address, driver);
}

void FakeSysfs::add_vf(const std::string& pf, int index, const std::string& address,
                       const std::string& netdev, const std::string& driver) {
  const fs::path dir = device_dir(address);
  const fs::path pf_dir = device_dir(pf);
  fs::create_directories(dir);
  relink(dir, fs::path(root_) / "bus/pci/devices" / address);
  relink(fs::path(root_) / "bus/pci", dir / "subsystem");
  relink(pf_dir, dir / "physfn");
  relink(dir, pf_dir / ("virtfn" + std::to_string(index)));
  int vfs = 0;
  for (const auto& e : fs::directory_iterator(pf_dir)) {
    if (e.path().filename().string().rfind("virtfn", 0) == 0) ++vfs;
  }
  write(pf_dir / "sriov_numvfs", std::to_string(vfs));
  set_netdev(address, netdev);
  set_driver(address, driver);
}

void FakeSysfs::set_netdev(const std::string& address, const std::string& netdev) {
  const fs::path net = fs::path(device_dir(address)) / "net";
  if (fs::exists(net)) {
    for (const auto& e : fs::directory_iterator(net)) {
      fs::remove(fs::path(root_) / "class/net" / e.path().filename());
    }
  }
  fs::remove_all(net);
  if (netdev.empty()) return;
  fs::create_directories(net / netdev);
  relink(device_dir(address), net / netdev / "device");
  relink(net / netdev, fs::path(root_) / "class/net" / netdev);
}

void FakeSysfs::set_driver(const std::string& address, const std::string& driver) {
  const fs::path link = fs::path(device_dir(address)) / "driver";
  std::error_code ec;
  fs::remove(link, ec);
  if (driver.empty()) return;
  const fs::path drv = fs::path(root_) / "bus/pci/drivers" / driver;
  fs::create_directories(drv);
  relink(drv, link);
}

}  // namespace strait::test
