#include "libcni/kernel/sysctl.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "libcni/core/error.h"

using cni::normalize_sysctl_name;

TEST_CASE("sysctl names: slashes stay, dotted names swap dots and slashes", "[sysctl]") {
  CHECK(normalize_sysctl_name("net/ipv4/conf/eth0/arp_notify") == "net/ipv4/conf/eth0/arp_notify");
  CHECK(normalize_sysctl_name("net.ipv4.conf.eth0.arp_notify") == "net/ipv4/conf/eth0/arp_notify");
  // A VLAN device name with a dot, in both spellings (sysctl(8) convention).
  CHECK(normalize_sysctl_name("net/ipv4/conf/eth0.100/arp_notify") ==
        "net/ipv4/conf/eth0.100/arp_notify");
  CHECK(normalize_sysctl_name("net.ipv4.conf.eth0/100.arp_notify") ==
        "net/ipv4/conf/eth0.100/arp_notify");
  CHECK(normalize_sysctl_name("kernel") == "kernel");
}

TEST_CASE("sysctl names that escape /proc/sys are rejected", "[sysctl]") {
  for (const char* bad :
       {"", "/etc/passwd", "../etc/passwd", "net/../../etc/passwd", "net/ipv4/..", "net//ipv4",
        "net/./ipv4", "net/ipv4/", "..", ".", "net..ipv4", ".net.ipv4"}) {
    INFO(bad);
    try {
      normalize_sysctl_name(bad);
      FAIL("accepted");
    } catch (const cni::Error& e) {
      CHECK(e.code() == cni::kErrInvalidConfig);
      CHECK(e.msg() == "invalid sysctl name \"" + std::string(bad) + "\"");
    }
  }
}

namespace {
struct FakeProcSys {
  std::filesystem::path root;
  FakeProcSys() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sysctl-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
    std::filesystem::create_directories(root / "net/ipv4/conf/eth0");
    std::ofstream(root / "net/ipv4/conf/eth0/arp_notify") << "0\n";
  }
  ~FakeProcSys() { std::filesystem::remove_all(root); }
};
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("read_sysctl and write_sysctl under an injected root", "[sysctl]") {
  FakeProcSys fake;
  const std::string root = fake.root.string();
  CHECK(cni::read_sysctl("net.ipv4.conf.eth0.arp_notify", root) == "0");
  cni::write_sysctl("net/ipv4/conf/eth0/arp_notify", "1", root);
  CHECK(slurp(fake.root / "net/ipv4/conf/eth0/arp_notify") == "1");
  CHECK(cni::read_sysctl("net/ipv4/conf/eth0/arp_notify", root) == "1");
}

TEST_CASE("sysctl errors name the key", "[sysctl]") {
  FakeProcSys fake;
  const std::string root = fake.root.string();
  try {
    cni::read_sysctl("net/ipv4/conf/eth9/arp_notify", root);
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()) ==
          "failed to read sysctl \"net/ipv4/conf/eth9/arp_notify\": No such file or directory");
  }
  try {
    cni::write_sysctl("net.ipv4.conf.eth9.arp_notify", "1", root);
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()) ==
          "failed to write sysctl \"net/ipv4/conf/eth9/arp_notify\" = \"1\": No such file or "
          "directory");
  }
  CHECK_THROWS_AS(cni::read_sysctl("../../etc/shadow", root), cni::Error);
}
