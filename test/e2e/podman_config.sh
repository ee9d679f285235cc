# Sourced by the podman tests: podman_use_scratch_config DIR points podman (through
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF) at a configuration and storage of its own under
# DIR, with the CNI backend looking for plugins in DIR/cni-bin and configs in DIR/net.d.
podman_use_scratch_config() {
  local tmp=$1
  cat >"$tmp/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["$tmp/cni-bin"]
network_config_dir = "$tmp/net.d"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$tmp/libpod"
EOF
  cat >"$tmp/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$tmp/storage"
runroot = "$tmp/run"
EOF
  export CONTAINERS_CONF="$tmp/containers.conf" CONTAINERS_STORAGE_CONF="$tmp/storage.conf"
}
