#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "libcni/kernel/devlink.h"

// A netdevsim device of the VM's kernel (module netdevsim, built by scripts/vm): a PF netdev
// whose driver keeps every VF setting it is given, reports it back, and in switchdev mode gives
// each VF a representor. Made and removed through /sys/bus/netdevsim, the driver's interface.
namespace strait::vm {

class Netdevsim {
 public:
  // Device `id` with one port (the PF netdev) and `vfs` VFs.
  Netdevsim(int id, int vfs) : id_(id) {
    write(kBus + "/new_device", std::to_string(id) + " 1");
    // The PF netdev appears when the driver has probed the device.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pf_.empty()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir() + "/net", ec)) {
        pf_ = e.path().filename().string();
      }
      if (!pf_.empty()) break;
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("netdevsim" + std::to_string(id) + " made no netdev");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (vfs > 0) write(dir() + "/sriov_numvfs", std::to_string(vfs));
  }
  ~Netdevsim() {
    try {
      write(kBus + "/del_device", std::to_string(id_));
    } catch (...) {
    }
  }
  Netdevsim(const Netdevsim&) = delete;
  Netdevsim& operator=(const Netdevsim&) = delete;

  const std::string& pf() const { return pf_; }  // the PF netdev, e.g. "eth0"
  std::string dir() const { return kBus + "/devices/netdevsim" + std::to_string(id_); }
  cni::DevlinkHandle devlink() const { return {"netdevsim", "netdevsim" + std::to_string(id_)}; }

 private:
  static void write(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write \"" + text + "\" to " + path);
  }
  inline static const std::string kBus = "/sys/bus/netdevsim";
  int id_;
  std::string pf_;
};

}  // namespace strait::vm
