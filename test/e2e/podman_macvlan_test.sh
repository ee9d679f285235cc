#!/usr/bin/env bash
# End-to-end: podman 4.3 with its CNI backend runs containers on our macvlan + host-local.
#
#   podman_macvlan_test.sh <dir holding the macvlan and host-local executables>
#
# Run as root. Everything podman needs (containers.conf, storage.conf, image, conflist, lease
# store) lives in a temp dir that the environment, not /etc, points podman at. The underlay is
# a veth: its master end sits in the root netns (no address, IPv6 off, only brought up), its
# peer sits in a netns this test makes and holds the gateway address. All of it is removed on
# exit, whatever happens.
#
# podman swallows a failing DEL (it still exits 0), so the test asserts on the kernel (links,
# addresses, netns) and on the lease store, and the plugin dir it gives podman holds thin
# wrappers that record each plugin call (command, exit status, stdin/stdout/stderr) and run
# the real binary: every ADD and DEL must have reached our plugins and succeeded.
set -euo pipefail

start_ns=$(date +%s%N)
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

[ $# -eq 1 ] || fail "usage: $0 <dir holding the macvlan and host-local executables>"
[ "$(id -u)" = 0 ] || fail "must run as root (podman runs containers, the test makes a netns)"
[ -d "$1" ] || fail "plugin dir \"$1\" does not exist"
plugin_dir=$(cd "$1" && pwd)
for b in macvlan host-local; do
  [ -x "$plugin_dir/$b" ] || fail "no executable \"$plugin_dir/$b\" (build it first)"
done
for t in podman runc conmon iptables ip nsenter findmnt tar od; do
  command -v "$t" >/dev/null || fail "\"$t\" not found: run scripts/setup (installs podman)"
done
busybox_bin=/bin/busybox
[ -x "$busybox_bin" ] || fail "no $busybox_bin: run scripts/setup (installs busybox-static)"
if ldd "$busybox_bin" >/dev/null 2>&1; then
  fail "$busybox_bin is dynamically linked: install busybox-static"
fi

# Unique names: concurrent runs and other tests share /run/netns and /var/lib/cni.
suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
net_name="strait-e2e-pm-$suffix"
test_ns="strait-e2e-pm-$suffix"
master="spm$suffix" # root netns end of the veth (<= 15 chars)
peer="spg$suffix"   # its peer in $test_ns, holds the gateway address
# TEST-NET-2, with a 14-address range picked per run.
block=$((16 * (1 + 0x${suffix:0:2} % 15)))
gateway=198.51.100.1
range_first=$((block + 1))
range_last=$((block + 14))
static_ip="198.51.100.$((block + 10))"
tmp=$(mktemp -d /tmp/strait-e2e-podman.XXXXXX)
log_dir="$tmp/cni-calls"
calls="$log_dir/calls" # one line per plugin call: id plugin command rc=N ifname container netns
lease_dir="$tmp/leases/$net_name"
image=localhost/strait-bb:latest

podman_ready=false
dump_calls() {
  [ -s "$calls" ] || return 0
  echo "--- plugin calls (wrapper log):" >&2
  cat "$calls" >&2
  local id
  grep -v ' rc=0 ' "$calls" | while read -r id _; do
    echo "--- failed call $id" >&2
    echo "stdin:  $(cat "$log_dir/$id.in")" >&2
    echo "stdout: $(cat "$log_dir/$id.out")" >&2
    echo "stderr: $(cat "$log_dir/$id.err")" >&2
  done
}
cleanup() {
  local rc=$?
  set +e
  [ $rc -ne 0 ] && dump_calls
  # Not "podman system reset": it also removes the podman machines of the user running it.
  if $podman_ready; then
    podman rm --all --force --time 0 >/dev/null 2>&1
    podman rmi --all --force >/dev/null 2>&1
  fi
  # The storage driver may leave mounts under its home: unmount them before removing.
  findmnt -rn -o TARGET | grep -F "$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$tmp"
  ip link del "$master" 2>/dev/null
  ip netns del "$test_ns" 2>/dev/null
  # libcni keeps a result per attachment until DEL succeeds; this run's network name is unique.
  rm -f /var/lib/cni/results/"$net_name"-*
  echo "--- took $((($(date +%s%N) - start_ns) / 1000000)) ms, exit status $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- podman's world, all inside $tmp -------------------------------------------------------
step "config in $tmp; network $net_name on master $master;" \
  "range 198.51.100.$range_first-$range_last; plugins from $plugin_dir"
mkdir -p "$tmp/cni-bin" "$log_dir" "$tmp/net.d" "$tmp/leases" "$tmp/rootfs/bin"
# podman's CNI_PATH is the wrapper dir, so macvlan reaches host-local through its wrapper too.
for b in macvlan host-local; do
  cat >"$tmp/cni-bin/$b" <<WRAPPER
#!/usr/bin/env bash
# Records the call, runs $plugin_dir/$b with the same env and stdin, passes its output on.
id=\$(date +%s%N).\$\$
cat >"$log_dir/\$id.in"
"$plugin_dir/$b" <"$log_dir/\$id.in" >"$log_dir/\$id.out" 2>"$log_dir/\$id.err"
rc=\$?
cat "$log_dir/\$id.out"
cat "$log_dir/\$id.err" >&2
echo "\$id $b \${CNI_COMMAND:-} rc=\$rc \${CNI_IFNAME:-} \${CNI_CONTAINERID:-} \${CNI_NETNS:-}" \\
  >>"$calls"
exit \$rc
WRAPPER
  chmod +x "$tmp/cni-bin/$b"
done

. "$(dirname "$0")/podman_config.sh"
podman_use_scratch_config "$tmp"

cat >"$tmp/net.d/$net_name.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$net_name",
  "plugins": [
    {
      "type": "macvlan",
      "master": "$master",
      "mode": "bridge",
      "ipam": {
        "type": "host-local",
        "dataDir": "$tmp/leases",
        "ranges": [[{
          "subnet": "198.51.100.0/24",
          "rangeStart": "198.51.100.$range_first",
          "rangeEnd": "198.51.100.$range_last",
          "gateway": "$gateway"
        }]]
      }
    }
  ]
}
EOF

# A busybox image: the static binary plus one symlink per applet.
cp "$busybox_bin" "$tmp/rootfs/bin/busybox"
for a in $("$busybox_bin" --list); do
  [ "$a" = busybox ] || ln -s busybox "$tmp/rootfs/bin/$a"
done
mkdir -p "$tmp/rootfs/etc" "$tmp/rootfs/proc" "$tmp/rootfs/sys" "$tmp/rootfs/dev" "$tmp/rootfs/tmp"
tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
podman_ready=true
podman import --quiet "$tmp/rootfs.tar" "$image" >/dev/null
podman network exists "$net_name" || fail "podman does not list network $net_name"

# --- the underlay: veth master in the root netns, gateway on its peer in our netns ---------
step "underlay: $master (root netns, no address) <-> $peer $gateway/24 (netns $test_ns)"
ip netns add "$test_ns"
ip link add "$master" type veth peer name "$peer" netns "$test_ns"
echo 1 >"/proc/sys/net/ipv6/conf/$master/disable_ipv6" # no link-local address, no route
ip link set "$master" up
ip -n "$test_ns" link set lo up
ip -n "$test_ns" addr add "$gateway/24" dev "$peer"
ip -n "$test_ns" link set "$peer" up
master_ifindex=$(cat "/sys/class/net/$master/ifindex")

# --- helpers -------------------------------------------------------------------------------
# Runs podman; any error or warning it logs fails the test. (A DEL failing after run --rm is
# not even logged: check_calls catches that from the wrapper log.)
pm() {
  local rc=0
  podman "$@" 2>"$tmp/podman.err" || rc=$?
  cat "$tmp/podman.err" >&2
  if grep -E 'level=(error|warning)|^Error' "$tmp/podman.err" >/dev/null; then
    fail "podman $1 reported errors or warnings (above)"
  fi
  [ $rc -eq 0 ] || fail "podman $* exited $rc"
}

in_range() { # 198.51.100.N with N in this run's range
  [[ $1 =~ ^198\.51\.100\.([0-9]+)$ ]] &&
    ((BASH_REMATCH[1] >= range_first && BASH_REMATCH[1] <= range_last))
}

calls_seen=0
# Checks the plugin calls since the last check: none failed, and each "plugin COMMAND count"
# argument (count "+" = at least one) matches.
check_calls() {
  local new line plugin cmd want n
  new=$(tail -n +$((calls_seen + 1)) "$calls" 2>/dev/null || true)
  calls_seen=$(wc -l <"$calls")
  if grep -v ' rc=0 ' <<<"$new" | grep . >/dev/null; then
    fail "a plugin call failed: $(grep -v ' rc=0 ' <<<"$new")"
  fi
  for line in "$@"; do
    read -r plugin cmd want <<<"$line"
    n=$(grep -c "^[^ ]* $plugin $cmd rc=0 eth0 " <<<"$new" || true)
    if [ "$want" = + ]; then
      [ "$n" -ge 1 ] || fail "no $cmd reached our $plugin; calls were:"$'\n'"$new"
    else
      [ "$n" -eq "$want" ] || fail "$n $cmd calls reached our $plugin, want $want:"$'\n'"$new"
    fi
  done
}

# No lease left in host-local's store, and nothing in it (name or content) names the container.
# Allowed: the lock, last_reserved_ip.*, and index files (names starting with "." or "index").
check_no_lease() { # <container id>
  [ -d "$lease_dir" ] || fail "host-local never created its store $lease_dir"
  local f name left=()
  for f in "$lease_dir"/* "$lease_dir"/.[!.]*; do
    [ -e "$f" ] || continue
    name=${f##*/}
    case $name in
      lock | last_reserved_ip.* | .* | index*) ;;
      *) left+=("$name") ;;
    esac
  done
  [ ${#left[@]} -eq 0 ] || fail "leases left in $lease_dir: ${left[*]}"
  mapfile -t left < <(find "$lease_dir" -name "*$1*" -print -o -type f -exec grep -lF "$1" {} +)
  [ ${#left[@]} -eq 0 ] || fail "files in $lease_dir still name container $1: ${left[*]}"
}

check_no_link_on_master() {
  local links
  links=$(ip -o link show type macvlan | grep -F "@$master:" || true)
  [ -z "$links" ] || fail "macvlan links left on $master in the root netns: $links"
  [ "$(cat "/sys/class/net/$master/ifindex")" = "$master_ifindex" ] || fail "$master changed"
}

check_no_cni_cache() {
  local f
  for f in /var/lib/cni/results/"$net_name"-*; do
    [ ! -e "$f" ] || fail "libcni cache entry left: $f"
  done
}

check_no_container() {
  local left
  left=$(podman ps --all --quiet)
  [ -z "$left" ] || fail "containers left: $left"
}

# --- 1. podman run --rm: dynamic address, gateway reachable, nothing left after -------------
step "podman run --rm --network $net_name"
calls_seen=$(wc -l <"$calls" 2>/dev/null || echo 0) # podman network ls/exists ran VERSION
out=$(pm run --rm --network "$net_name" "$image" \
  sh -c "readlink /proc/self/ns/net; ip -o -4 addr show; ping -c1 -W3 $gateway && echo ping-ok")
echo "$out"
ns_ino=$(sed -n '1s/^net:\[\([0-9]*\)\]$/\1/p' <<<"$out")
[ -n "$ns_ino" ] || fail "container did not print its netns inode"
ip1=$(sed -n 's/^[0-9]*: *eth0 *inet \([0-9.]*\)\/24 .*/\1/p' <<<"$out")
[ -n "$ip1" ] || fail "no IPv4 /24 address on eth0 in the container"
[ "$(grep -c ' inet ' <<<"$out")" = 2 ] || fail "want exactly lo and eth0 IPv4 addresses"
in_range "$ip1" || fail "eth0 got $ip1, not in 198.51.100.$range_first-$range_last"
grep -qx ping-ok <<<"$out" || fail "container could not ping its gateway $gateway"
echo "got $ip1, pinged $gateway"

check_calls "macvlan ADD 1" "host-local ADD 1" "macvlan DEL +" "host-local DEL +"
cid1=$(awk '$2 == "macvlan" && $3 == "ADD" { print $6 }' "$calls")
[[ $cid1 =~ ^[0-9a-f]{64}$ ]] || fail "ADD had CNI_CONTAINERID \"$cid1\", not a podman id"
check_no_lease "$cid1"
[ "$(cat "$lease_dir/last_reserved_ip.0" 2>/dev/null)" = "$ip1" ] ||
  fail "host-local's last_reserved_ip.0 is not $ip1"
check_no_link_on_master
for f in /run/netns/*; do
  [ -e "$f" ] || continue
  [ "$(stat -L -c %i "$f" 2>/dev/null)" != "$ns_ino" ] || fail "container netns left: $f"
done
check_no_cni_cache
check_no_container

# --- 2. --ip: the static address (CNI_ARGS IP=) exactly, seen by the kernel and by podman ----
step "podman run -d --network $net_name --ip $static_ip"
cid=$(pm run -d --network "$net_name" --ip "$static_ip" "$image" sleep 300)
[[ $cid =~ ^[0-9a-f]{64}$ ]] || fail "podman run -d printed \"$cid\", not a container id"
check_calls "macvlan ADD 1" "host-local ADD 1"
sandbox=$(pm inspect -f '{{.NetworkSettings.SandboxKey}}' "$cid")
[ -e "$sandbox" ] || fail "container netns \"$sandbox\" does not exist"

addrs=$(nsenter --net="$sandbox" ip -o -4 addr show dev eth0)
echo "$addrs"
[ "$(grep -c ' inet ' <<<"$addrs")" = 1 ] || fail "want one IPv4 address on eth0"
grep -q " inet $static_ip/24 " <<<"$addrs" || fail "eth0 does not have $static_ip/24"
link=$(nsenter --net="$sandbox" ip -o -d link show dev eth0)
echo "$link"
grep -q "^[0-9]*: eth0@if$master_ifindex: " <<<"$link" || fail "eth0's parent is not $master"
grep -q ' macvlan mode bridge ' <<<"$link" || fail "eth0 is not a bridge-mode macvlan"
grep -q '[<,]UP[,>]' <<<"$link" || fail "eth0 is not up"
mac=$(sed -n 's/.* link\/ether \([0-9a-f:]*\) .*/\1/p' <<<"$link")

# podman parsed our result: its view must match the kernel's.
fmt="{{with index .NetworkSettings.Networks \"$net_name\"}}"
fmt+="{{.IPAddress}}/{{.IPPrefixLen}} gw {{.Gateway}} mac {{.MacAddress}}{{end}}"
seen=$(pm inspect -f "$fmt" "$cid")
[ "$seen" = "$static_ip/24 gw $gateway mac $mac" ] ||
  fail "podman inspect says \"$seen\", kernel says $static_ip/24 mac $mac (gateway $gateway)"

[ -f "$lease_dir/$static_ip" ] || fail "no lease file $lease_dir/$static_ip"
printf '%s\r\n%s' "$cid" eth0 | cmp -s - "$lease_dir/$static_ip" ||
  fail "lease $static_ip holds \"$(tr '\r\n' '  ' <"$lease_dir/$static_ip")\", want \"$cid eth0\""
pm exec "$cid" ping -c1 -W3 "$gateway" >/dev/null || fail "container cannot ping $gateway"
ip netns exec "$test_ns" "$busybox_bin" ping -c1 -W3 "$static_ip" >/dev/null ||
  fail "gateway cannot ping the container at $static_ip"
echo "kernel, podman and lease store agree on $static_ip; pings both ways"

step "podman rm -f $cid"
pm rm --force --time 0 "$cid" >/dev/null
check_calls "macvlan DEL +" "host-local DEL +"
check_no_lease "$cid"
check_no_link_on_master
[ ! -e "$sandbox" ] || fail "container netns $sandbox left after rm"
check_no_cni_cache
check_no_container

# --- the root netns: the master is still bare ---------------------------------------------
[ -z "$(ip -o addr show dev "$master")" ] || fail "addresses appeared on $master"
[ -z "$(ip route show table all dev "$master")" ] || fail "IPv4 routes appeared via $master"
[ -z "$(ip -6 route show table all dev "$master")" ] || fail "IPv6 routes appeared via $master"
step "PASS"
