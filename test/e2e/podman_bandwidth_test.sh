#!/usr/bin/env bash
# End-to-end: podman 4.3 with its CNI backend runs containers on two chains ending in our
# bandwidth plugin: the reference bridge + our bandwidth, and our macvlan + our bandwidth.
#
#   podman_bandwidth_test.sh <dir holding the bandwidth, macvlan and host-local executables>
#
# Run as root. podman itself runs inside a network namespace this test makes (`nsenter --net`,
# not `ip netns exec`: that remounts /sys, which hides the cgroup mounts runc needs), so that
# namespace is the "host" of every plugin: the bridge, its veths, the ifb and the
# macvlan master all live there, and nothing at all is added to the machine's own namespace.
# podman never sends runtimeConfig.bandwidth (../shared/notes/podman.md), so the limits come
# from the conflists. The plugin dir podman gets holds wrappers that record each call and, right
# after bandwidth's ADD, the qdiscs and ifb devices of the host and pod namespaces; the test
# asserts on those and on the namespaces after the containers are gone (podman swallows a
# failing DEL).
set -euo pipefail

start_ns=$(date +%s%N)
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

[ $# -eq 1 ] || fail "usage: $0 <dir holding the bandwidth, macvlan and host-local executables>"
[ "$(id -u)" = 0 ] || fail "must run as root (podman runs containers, the test makes netns)"
[ -d "$1" ] || fail "plugin dir \"$1\" does not exist"
plugin_dir=$(cd "$1" && pwd)
for b in bandwidth macvlan host-local; do
  [ -x "$plugin_dir/$b" ] || fail "no executable \"$plugin_dir/$b\" (build it first)"
done
reference=/usr/lib/cni
[ -x "$reference/bridge" ] || fail "no $reference/bridge: run scripts/setup (containernetworking-plugins)"
for t in podman runc conmon ip tc nsenter findmnt tar od; do
  command -v "$t" >/dev/null || fail "\"$t\" not found: run scripts/setup (installs podman)"
done
busybox_bin=/bin/busybox
[ -x "$busybox_bin" ] || fail "no $busybox_bin: run scripts/setup (installs busybox-static)"

suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
host_ns="strait-e2e-bwh-$suffix" # podman's "host"
gw_ns="strait-e2e-bwg-$suffix"   # holds the macvlan underlay's gateway
net_br="strait-e2e-bwbr-$suffix"
net_mv="strait-e2e-bwmv-$suffix"
bridge="sbw$suffix"
octet=$((128 + 0x${suffix:0:2} % 64))
br_subnet="10.$octet.0.0/24"
br_gateway="10.$octet.0.1"
mv_gateway=198.51.100.1
tmp=$(mktemp -d /tmp/strait-e2e-podman-bw.XXXXXX)
log_dir="$tmp/cni-calls"
calls="$log_dir/calls" # one line per plugin call: id plugin command rc=N ifname container netns
image=localhost/strait-bb:latest

podman_ready=false
dump_calls() {
  [ -s "$calls" ] || return 0
  echo "--- plugin calls (wrapper log):" >&2
  cat "$calls" >&2
  local id
  grep -v ' rc=0 ' "$calls" | while read -r id _; do
    echo "--- failed call $id: stdin $(cat "$log_dir/$id.in")" >&2
    echo "stdout: $(cat "$log_dir/$id.out")" >&2
    echo "stderr: $(cat "$log_dir/$id.err")" >&2
  done
}
cleanup() {
  local rc=$?
  set +e
  [ $rc -ne 0 ] && dump_calls
  if $podman_ready; then
    nsenter --net="/run/netns/$host_ns" podman rm --all --force --time 0 >/dev/null 2>&1
    nsenter --net="/run/netns/$host_ns" podman rmi --all --force >/dev/null 2>&1
  fi
  findmnt -rn -o TARGET | grep -F "$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$tmp"
  ip netns del "$host_ns" 2>/dev/null
  ip netns del "$gw_ns" 2>/dev/null
  rm -f /var/lib/cni/results/"$net_br"-* /var/lib/cni/results/"$net_mv"-*
  echo "--- took $((($(date +%s%N) - start_ns) / 1000000)) ms, exit status $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "podman runs in netns $host_ns; networks $net_br (reference bridge) and $net_mv (our macvlan)"
mkdir -p "$tmp/cni-bin" "$log_dir" "$tmp/net.d" "$tmp/leases" "$tmp/rootfs/bin"
ip netns add "$host_ns"
ip netns add "$gw_ns"
ip -n "$host_ns" link set lo up
ip -n "$host_ns" link add mst0 type veth peer name gw0 netns "$gw_ns"
ip -n "$host_ns" link set mst0 up
ip -n "$gw_ns" addr add "$mv_gateway/24" dev gw0
ip -n "$gw_ns" link set gw0 up

# Wrappers: record the call, run the real binary; after bandwidth's ADD also record the state it
# left (host netns = the wrapper's own, pod netns = CNI_NETNS).
wrap() { # <name> <real binary>
  cat >"$tmp/cni-bin/$1" <<WRAPPER
#!/usr/bin/env bash
id=\$(date +%s%N).\$\$
cat >"$log_dir/\$id.in"
"$2" <"$log_dir/\$id.in" >"$log_dir/\$id.out" 2>"$log_dir/\$id.err"
rc=\$?
if [ "$1" = bandwidth ] && [ "\${CNI_COMMAND:-}" = ADD ] && [ \$rc = 0 ]; then
  { echo "host qdiscs:"; tc qdisc show; echo "host ifbs:"; ip -o link show type ifb
    echo "pod qdiscs:"; nsenter --net="\$CNI_NETNS" tc qdisc show
    echo "pod ifbs:"; nsenter --net="\$CNI_NETNS" ip -o link show type ifb; } >"$log_dir/\$id.state" 2>&1
fi
cat "$log_dir/\$id.out"
cat "$log_dir/\$id.err" >&2
echo "\$id $1 \${CNI_COMMAND:-} rc=\$rc \${CNI_IFNAME:-} \${CNI_CONTAINERID:-} \${CNI_NETNS:-}" >>"$calls"
exit \$rc
WRAPPER
  chmod +x "$tmp/cni-bin/$1"
}
wrap bridge "$reference/bridge"
wrap bandwidth "$plugin_dir/bandwidth"
wrap macvlan "$plugin_dir/macvlan"
wrap host-local "$plugin_dir/host-local"

. "$(dirname "$0")/podman_config.sh"
podman_use_scratch_config "$tmp"

cat >"$tmp/net.d/$net_br.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$net_br",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$tmp/leases",
              "ranges": [[{"subnet": "$br_subnet", "gateway": "$br_gateway"}]]}},
    {"type": "bandwidth", "ingressRate": 40000000, "ingressBurst": 400000,
     "egressRate": 20000000, "egressBurst": 200000}
  ]
}
EOF
cat >"$tmp/net.d/$net_mv.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$net_mv",
  "plugins": [
    {"type": "macvlan", "master": "mst0", "mode": "bridge",
     "ipam": {"type": "host-local", "dataDir": "$tmp/leases",
              "ranges": [[{"subnet": "198.51.100.0/24", "rangeStart": "198.51.100.10",
                           "rangeEnd": "198.51.100.20", "gateway": "$mv_gateway"}]]}},
    {"type": "bandwidth", "ingressRate": 30000000, "ingressBurst": 4294967295,
     "egressRate": 10000000, "egressBurst": 100000}
  ]
}
EOF

cp "$busybox_bin" "$tmp/rootfs/bin/busybox"
for a in $("$busybox_bin" --list); do
  [ "$a" = busybox ] || ln -s busybox "$tmp/rootfs/bin/$a"
done
mkdir -p "$tmp/rootfs/etc" "$tmp/rootfs/proc" "$tmp/rootfs/sys" "$tmp/rootfs/dev" "$tmp/rootfs/tmp"
tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
podman_ready=true
nsenter --net="/run/netns/$host_ns" podman import --quiet "$tmp/rootfs.tar" "$image" >/dev/null

pm() { # podman in the host netns; any error or warning it logs fails the test
  local rc=0
  nsenter --net="/run/netns/$host_ns" podman "$@" 2>"$tmp/podman.err" || rc=$?
  cat "$tmp/podman.err" >&2
  if grep -E 'level=(error|warning)|^Error' "$tmp/podman.err" >/dev/null; then
    fail "podman $1 reported errors or warnings (above)"
  fi
  [ $rc -eq 0 ] || fail "podman $* exited $rc"
}

calls_seen=0
# The calls since the last check: none failed, and each "plugin COMMAND count" matches ("+" =
# at least one).
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
      [ "$n" -ge 1 ] || fail "no $cmd reached $plugin; calls were:"$'\n'"$new"
    else
      [ "$n" -eq "$want" ] || fail "$n $cmd calls reached $plugin, want $want:"$'\n'"$new"
    fi
  done
}

# The state the last bandwidth ADD left, recorded by its wrapper.
last_state() {
  local id
  id=$(awk '$2 == "bandwidth" && $3 == "ADD" { id = $1 } END { print id }' "$calls")
  [ -n "$id" ] && [ -s "$log_dir/$id.state" ] || fail "no state recorded after bandwidth ADD"
  cat "$log_dir/$id.state"
}
last_stderr() {
  local id
  id=$(awk '$2 == "bandwidth" && $3 == "ADD" { id = $1 } END { print id }' "$calls")
  cat "$log_dir/$id.err"
}
section() { # <state> <name>: the lines after "<name>:" up to the next header
  awk -v h="$2:" '$0 == h { on = 1; next } /^(host|pod) (qdiscs|ifbs):$/ { on = 0 } on' <<<"$1"
}

nothing_left_on_host() {
  local ifbs tbfs
  ifbs=$(ip -n "$host_ns" -o link show type ifb)
  [ -z "$ifbs" ] || fail "ifb devices left in $host_ns: $ifbs"
  tbfs=$(tc -n "$host_ns" qdisc show | grep -E 'tbf|ingress' || true)
  [ -z "$tbfs" ] || fail "qdiscs left in $host_ns: $tbfs"
  for f in /var/lib/cni/results/"$net_br"-* /var/lib/cni/results/"$net_mv"-*; do
    [ ! -e "$f" ] || fail "libcni cache entry left: $f"
  done
  [ -z "$(nsenter --net="/run/netns/$host_ns" podman ps --all --quiet)" ] || fail "containers left"
}

# --- 1. the reference bridge + our bandwidth ----------------------------------------------
step "podman run --rm --network $net_br (reference bridge + our bandwidth)"
calls_seen=0
out=$(pm run --rm --network "$net_br" "$image" sh -c "ping -c1 -W3 $br_gateway && echo ping-ok")
echo "$out"
grep -qx ping-ok <<<"$out" || fail "container could not ping its gateway $br_gateway"
check_calls "bridge ADD 1" "bandwidth ADD 1" "bandwidth DEL +" "bridge DEL +"
state=$(last_state)
echo "$state"
host_q=$(section "$state" "host qdiscs")
ifb=$(section "$state" "host ifbs" | sed -n 's/^[0-9]*: \(bwp[0-9a-f]*\):.*/\1/p')
[ -n "$ifb" ] || fail "no bwp ifb in the host netns after ADD"
cid=$(awk '$2 == "bandwidth" && $3 == "ADD" { c = $6 } END { print c }' "$calls")
want_ifb="bwp$(printf %s "$net_br$cid" | sha512sum | cut -c1-12)"
[ "$ifb" = "$want_ifb" ] || fail "ifb is $ifb, upstream's name would be $want_ifb"
grep -q "qdisc tbf 1: dev veth[0-9a-f]* root .*rate 40Mbit" <<<"$host_q" ||
  fail "no tbf of 40Mbit on the host veth"
grep -q "qdisc ingress ffff: dev veth" <<<"$host_q" || fail "no ingress qdisc on the host veth"
grep -q "qdisc tbf 1: dev $ifb root .*rate 20Mbit" <<<"$host_q" || fail "no tbf of 20Mbit on $ifb"
[ -z "$(section "$state" "pod qdiscs" | grep tbf)" ] || fail "a tbf inside the bridge pod"
nothing_left_on_host
echo "host veth shaped at 40Mbit, $ifb at 20Mbit; all gone after the container"

# --- 2. our macvlan + our bandwidth -------------------------------------------------------
step "podman run --rm --network $net_mv (our macvlan + our bandwidth)"
out=$(pm run --rm --network "$net_mv" "$image" sh -c "ping -c1 -W3 $mv_gateway && echo ping-ok")
echo "$out"
grep -qx ping-ok <<<"$out" || fail "container could not ping its gateway $mv_gateway"
check_calls "macvlan ADD 1" "bandwidth ADD 1" "bandwidth DEL +" "macvlan DEL +"
state=$(last_state)
echo "$state"
pod_q=$(section "$state" "pod qdiscs")
pod_ifb=$(section "$state" "pod ifbs" | sed -n 's/^[0-9]*: \(bwi[0-9a-f]*\):.*/\1/p')
[ -n "$pod_ifb" ] || fail "no bwi ifb inside the macvlan pod after ADD"
grep -q "qdisc tbf 1: dev eth0 root .*rate 10Mbit" <<<"$pod_q" || fail "no tbf of 10Mbit on eth0"
grep -q "qdisc ingress ffff: dev eth0" <<<"$pod_q" || fail "no ingress qdisc on eth0"
grep -q "qdisc tbf 1: dev $pod_ifb root .*rate 30Mbit" <<<"$pod_q" ||
  fail "no tbf of 30Mbit on $pod_ifb"
[ -z "$(section "$state" "host ifbs")" ] || fail "an ifb in the host netns for a macvlan pod"
last_stderr | grep -q "ingress: burst 4294967295 bits capped" ||
  fail "the runtime-size burst was not capped (or not logged)"
nothing_left_on_host
# lo, the underlay's mst0 and the bridge (the reference bridge keeps it after the last DEL).
left=$(ip -n "$host_ns" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
  grep -vxE "lo|mst0|$bridge" || true)
[ -z "$left" ] || fail "links left in $host_ns: $left"
echo "eth0 shaped at 10Mbit, $pod_ifb at 30Mbit inside the pod; the burst was capped; all gone"
step "PASS"
