#include "libcni/kernel/sysfs.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "test/support/fake_sysfs.h"
#include "test/support/temp_dir.h"

using cni::Sysfs;
using strait::test::FakeSysfs;
using strait::unit::TmpDir;

TEST_CASE("is_pci_address takes the domain:bus:device.function form sysfs uses", "[sysfs]") {
  for (const char* good : {"0000:af:06.0", "0000:00:00.7", "ffff:ff:1f.7", "0000:AF:06.0"}) {
    INFO(good);
    CHECK(cni::is_pci_address(good));
  }
  for (const char* bad : {"", "af:06.0", "0000:af:06", "0000:af:06.8", "0000:af:20.0",
                          "0000:af:06.00", "00000:af:06.0", "0000-af-06.0", "0000:ag:06.0",
                          "0000:af:06.0 ", "../../etc", "0000:af:0g.1"}) {
    INFO(bad);
    CHECK_FALSE(cni::is_pci_address(bad));
  }
}

TEST_CASE("Sysfs resolves a VF's PF, index, netdev and driver in a fake tree", "[sysfs]") {
  TmpDir dir;
  FakeSysfs fake(dir.path());
  fake.add_pf("0000:af:00.0", "enp175s0f0");
  fake.add_vf("0000:af:00.0", 0, "0000:af:02.0", "enp175s0f0v0");
  fake.add_vf("0000:af:00.0", 1, "0000:af:02.1", "enp175s0f0v1");
  fake.add_vf("0000:af:00.0", 10, "0000:af:03.2", "", "vfio-pci");
  const Sysfs sys(dir.path());

  CHECK(sys.pci_device_exists("0000:af:02.1"));
  CHECK_FALSE(sys.pci_device_exists("0000:af:09.0"));
  CHECK(sys.pci_physfn("0000:af:02.1") == "0000:af:00.0");
  CHECK(sys.pci_physfn("0000:af:00.0") == std::nullopt);  // a PF is no VF
  CHECK(sys.pci_physfn("0000:af:09.0") == std::nullopt);
  CHECK(sys.pci_virtfns("0000:af:00.0") ==
        std::map<int, std::string>{{0, "0000:af:02.0"}, {1, "0000:af:02.1"}, {10, "0000:af:03.2"}});
  CHECK(sys.pci_vf_index("0000:af:00.0", "0000:af:02.1") == 1);
  CHECK(sys.pci_vf_index("0000:af:00.0", "0000:af:03.2") == 10);  // virtfn10, not virtfn1
  CHECK(sys.pci_vf_index("0000:af:00.0", "0000:af:09.0") == std::nullopt);
  CHECK(sys.pci_netdevs("0000:af:00.0") == std::vector<std::string>{"enp175s0f0"});
  CHECK(sys.pci_netdevs("0000:af:02.1") == std::vector<std::string>{"enp175s0f0v1"});
  CHECK(sys.pci_netdevs("0000:af:03.2").empty());
  CHECK(sys.pci_driver("0000:af:03.2") == "vfio-pci");
  CHECK(sys.pci_driver("0000:af:02.0") == "fake_vf");
  CHECK(sys.pci_sriov_numvfs("0000:af:00.0") == 3);
  CHECK(sys.pci_sriov_numvfs("0000:af:02.0") == std::nullopt);
  CHECK(sys.netdev_device("enp175s0f0v1") == cni::BusDevice{"pci", "0000:af:02.1"});
  CHECK(sys.netdev_device("lo") == std::nullopt);

  fake.set_netdev("0000:af:02.1", "");
  fake.set_driver("0000:af:02.1", "");
  CHECK(sys.pci_netdevs("0000:af:02.1").empty());
  CHECK(sys.pci_driver("0000:af:02.1") == std::nullopt);
  CHECK(sys.netdev_device("enp175s0f0v1") == std::nullopt);
}

TEST_CASE("Sysfs: a missing root reads as no devices, not as an error", "[sysfs]") {
  const Sysfs sys("/nonexistent/strait-sysfs");
  CHECK_FALSE(sys.pci_device_exists("0000:af:02.0"));
  CHECK(sys.pci_physfn("0000:af:02.0") == std::nullopt);
  CHECK(sys.pci_virtfns("0000:af:00.0").empty());
  CHECK(sys.pci_netdevs("0000:af:02.0").empty());
  CHECK(sys.pci_driver("0000:af:02.0") == std::nullopt);
}
