#pragma once

#include <string>
#include <vector>

// The bench's private network: a "host" namespace whose eth1 (a veth) is the macvlan master,
// its peer "uplink" (192.0.2.1/24) in a "peer" namespace, and a pool of pod namespaces.
// Every name starts with the run's prefix, so scripts/bench can sweep leftovers even if
// this process is killed. Nothing is configured in the machine's root namespace.
namespace strait::bench {

class Lab {
 public:
  // Creates the namespaces and the veth pair; deletes what it made if a step fails.
  Lab(std::string prefix, int pods);
  ~Lab();  // deletes every namespace it created
  Lab(const Lab&) = delete;
  Lab& operator=(const Lab&) = delete;

  std::string host_path() const { return "/run/netns/" + host_; }
  std::string pod_path(size_t i) const { return "/run/netns/" + pods_.at(i); }
  size_t pod_count() const { return pods_.size(); }
  static constexpr const char* kMaster = "eth1";  // in the host namespace

 private:
  void add_netns(const std::string& name);
  void teardown();

  std::string host_;
  std::string peer_;
  std::vector<std::string> pods_;
  std::vector<std::string> created_;
};

// A directory under /tmp, removed recursively on destruction (or `path` given by the
// caller, which is then left alone).
class WorkDir {
 public:
  explicit WorkDir(const std::string& given);
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool owned_ = false;
};

// Runs a set-up command (argv[0] is a path) and throws with its output if it fails.
std::string run_checked(const std::vector<std::string>& argv);
// The `ip` binary of iproute2.
const std::string& ip_binary();

}  // namespace strait::bench
