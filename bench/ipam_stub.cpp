// strait-bench-ipam-stub: a do-nothing IPAM plugin, installed as "host-local" in a
// directory of its own, so that a macvlan exec can be measured without its IPAM child
// (wait4 reports the largest peak of the plugin and of the children it waited for).
// Static and tiny: its own peak stays below any plugin's. ADD prints one fixed address in
// the config's cniVersion (1.0.0 in the bench); DEL and CHECK print nothing.
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {

void put(const char* s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = write(1, s, len);
    if (n <= 0) return;
    s += n;
    len -= static_cast<size_t>(n);
  }
}

}  // namespace

int main() {
  char buf[4096];
  while (read(0, buf, sizeof buf) > 0) {
  }
  const char* cmd = getenv("CNI_COMMAND");
  if (cmd == nullptr) return 1;
  if (strcmp(cmd, "ADD") == 0) {
    put(R"({"cniVersion":"1.0.0","ips":[{"address":"192.0.2.77/24","gateway":"192.0.2.1"}],)"
        R"("routes":[{"dst":"0.0.0.0/0"}],"dns":{}})");
  } else if (strcmp(cmd, "VERSION") == 0) {
    put(R"({"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]})");
  }
  return 0;
}
