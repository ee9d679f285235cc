#pragma once

#include <string>
#include <string_view>

// Kernel parameters under /proc/sys. The net/ subtree belongs to the network namespace of
// the thread that opens the file, so these follow a NetnsGuard (unlike /sys, which shows
// the netns of whoever mounted it).
namespace cni {

inline constexpr std::string_view kProcSys = "/proc/sys";

// "net/ipv4/conf/eth0/arp_notify" as a path below /proc/sys. Dotted names work as with
// sysctl(8) and upstream's pkg/utils/sysctl: when the first separator is a dot, dots and
// slashes swap, so "net.ipv4.conf.eth0/100.arp_notify" names the VLAN device "eth0.100".
// Throws Error{kErrInvalidConfig} for an empty or absolute name or a "", "." or ".." part.
std::string normalize_sysctl_name(std::string_view name);

// The value without its trailing newline. Throws std::system_error
// `failed to read sysctl "net/ipv4/conf/eth0/arp_notify": No such file or directory`.
// `root` is for tests.
std::string read_sysctl(std::string_view name, std::string_view root = kProcSys);
// Writes `value` as is. Throws std::system_error naming the key and value.
void write_sysctl(std::string_view name, std::string_view value, std::string_view root = kProcSys);

}  // namespace cni
