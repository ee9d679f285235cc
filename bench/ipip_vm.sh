#!/usr/bin/env bash
# The ipip benchmark, run inside the VM by `scripts/bench ipip` (scripts/vm --modules
# ipip,vxlan: this machine's kernel has no ipip). Two node netns on an underlay bridge:
#   1. ADD and DEL p50 through one client (our cnitool) of our ipip and our vxlan (both on
#      global-ipam, file store) beside the reference ptp + host-local (Debian's /usr/lib/cni),
#      interleaved, REPS rounds;
#   2. iperf3 TCP pod to pod across the nodes over our ipip, against the same pod-to-pod
#      topology made by hand with ip(8) over a hand-made ipip device between the same node
#      netns (the same data plane: the ratio is our plugin's cost), and for context node to
#      node over that device and over the underlay itself; IPERF_REPS runs of each,
#      interleaved, as medians and ratios.
# Under TCG the absolute figures mean nothing; the ratios of one run are the result.
#   bench/ipip_vm.sh <our bin dir> [REPS] [IPERF_SECONDS] [IPERF_REPS]
set -euo pipefail
bin=$1
reps=${2:-15}
secs=${3:-4}
iperf_reps=${4:-5}
ref=/usr/lib/cni
p=ipb$$
work=$(mktemp -d /tmp/strait-ipip-bench.XXXXXX)
cleanup() {
  set +e
  for ns in $(ip netns list | awk '{print $1}' | grep "^$p-"); do ip netns delete "$ns"; done
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add $p-ul
ip -n $p-ul link add br0 type bridge
ip -n $p-ul addr add 192.0.2.1/24 dev br0
ip -n $p-ul link set br0 up
for i in 0 1; do
  ip netns add $p-n$i
  ip -n $p-n$i link add eth0 type veth peer name ul$i netns $p-ul
  ip -n $p-ul link set ul$i master br0 up
  ip -n $p-n$i addr add 192.0.2.1$i/24 dev eth0
  ip -n $p-n$i link set eth0 up
  ip -n $p-n$i link set lo up
  ip -n $p-n$i route add default via 192.0.2.1
done

# One conflist per plugin and node; global-ipam's store is shared by the nodes.
overlay_conf() { # type node extra
  mkdir -p "$work/$1-$2"
  cat > "$work/$1-$2/net.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "b$1", "plugins": [{"type": "$1", "underlayInterface": "eth0"$3,
 "ipam": {"type": "global-ipam", "nodeName": "node$2", "store": {"type": "file", "path": "$work/store-$1"},
  "nodeLockDir": "$work/locks-$1-$2",
  "pools": [{"name": "v4", "cidr": "10.$4.0.0/16", "blockSize": 26}]}}]}
JSON
}
for i in 0 1; do
  overlay_conf ipip $i "" 244
  overlay_conf vxlan $i "" 245
done
mkdir -p "$work/ptp-0"
cat > "$work/ptp-0/net.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bptp", "plugins": [{"type": "ptp", "ipMasq": false,
 "ipam": {"type": "host-local", "dataDir": "$work/leases", "ranges": [[{"subnet": "10.246.0.0/16"}]]}}]}
JSON

cni() { # plugin node verb pod
  local path=$bin
  [ "$1" = ptp ] && path=$ref
  ip netns exec "$p-n$2" env NETCONFPATH="$work/$1-$2" CNI_PATH="$path" \
    CNI_CACHE_DIR="$work/cache" "$bin/cnitool" "$3" "b$1" "/run/netns/$4"
}
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Warm-up: the node side (device, tunnel address, record) is made by the first ADD.
for pl in ipip vxlan ptp; do
  ip netns add $p-w$pl
  cni $pl 0 add $p-w$pl >/dev/null
done

for ((r = 0; r < reps; r++)); do
  for pl in ipip vxlan ptp; do
    ip netns add $p-pod
    t0=$(now)
    cni $pl 0 add $p-pod >/dev/null
    t1=$(now)
    cni $pl 0 del $p-pod
    t2=$(now)
    ip netns delete $p-pod
    echo $(((t1 - t0) / 1000)) >> "$work/add-$pl"
    echo $(((t2 - t1) / 1000)) >> "$work/del-$pl"
  done
done

echo "ADD/DEL through our cnitool, $reps rounds interleaved, p50 in ms (TCG: compare ratios)"
printf '%-22s %10s %10s %12s %12s\n' plugin "ADD p50" "DEL p50" "ADD vs ptp" "DEL vs ptp"
add_ptp=$(median < "$work/add-ptp")
del_ptp=$(median < "$work/del-ptp")
for pl in ipip vxlan ptp; do
  a=$(median < "$work/add-$pl")
  d=$(median < "$work/del-$pl")
  name=$pl
  [ "$pl" = ptp ] && name="ptp + host-local (ref)"
  printf '%-22s %10.1f %10.1f %11.2fx %11.2fx\n' "$name" "$(echo "$a / 1000" | bc -l)" \
    "$(echo "$d / 1000" | bc -l)" "$(echo "$a / $add_ptp" | bc -l)" "$(echo "$d / $del_ptp" | bc -l)"
done

# iperf3 across the nodes. The reference is the same pod-to-pod topology made by hand
# (bench/hand_pod.sh: veth pairs at our pod MTU, /32 routes, proxy ARP for the link-local
# gateway) over an ipip device made by hand as tunl0 is used (remote any, the other node as
# the onlink next hop). The hand-made device has underlay addresses of its own (192.0.2.2x):
# the kernel hands a received ipip packet to the device whose local and remote match it best,
# so a device on the nodes' own addresses would take our packets from tunl0. Node to node over
# the hand-made device and over the underlay are for context.
for i in 0 1; do
  ip netns add $p-pod$i
  cni ipip $i add $p-pod$i > "$work/pod$i.json"
done
for i in 0 1; do
  ip netns exec $p-n$i "$bin/ipip" sync --config "$work/ipip-$i/net.conflist" 2>/dev/null
done
pod1=$(grep -o '"address": "[0-9.]*' "$work/pod1.json" | head -1 | cut -d'"' -f4)
mtu=$(ip -n $p-pod0 -o link show eth0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
for i in 0 1; do
  o=$((1 - i))
  ip -n $p-n$i addr add 192.0.2.2$i/24 dev eth0
  ip -n $p-n$i link add hipip type ipip local 192.0.2.2$i
  ip -n $p-n$i addr add 10.99.0.$((i + 1))/32 dev hipip
  ip -n $p-n$i link set hipip up
  ip -n $p-n$i route add 10.99.0.$((o + 1))/32 via 192.0.2.2$o dev hipip onlink
  ip netns add $p-hpod$i
  bash "$(dirname "$0")/hand_pod.sh" $p-n$i $p-hpod$i $i "$mtu" hipip 192.0.2.2$o
done

goodput() { # client-netns server-address (the server runs in the netns $server_of)
  ip netns exec "$1" iperf3 -c "$2" -t "$secs" -J | grep -m1 -A8 '"sum_received"' |
    grep -o '"bits_per_second":[^,]*' | head -1 | cut -d: -f2 | tr -d ' '
}
# key client-netns server-netns server-address label
paths=("ours $p-pod0 $p-pod1 $pod1 pod-to-pod-over-our-ipip-(tunl0)"
  "hand_pod $p-hpod0 $p-hpod1 10.98.1.2 pod-to-pod-over-an-ipip-made-by-hand-(the-same-data-plane)"
  "hand $p-n0 $p-n1 10.99.0.2 node-to-node-over-the-hand-made-ipip"
  "under $p-n0 $p-n1 192.0.2.11 node-to-node-over-the-underlay")
servers=() # one iperf3 server per server netns (the node-to-node paths share n1)
for entry in "${paths[@]}"; do
  read -r key client server address label <<<"$entry"
  [[ " ${servers[*]} " == *" $server "* ]] && continue
  ip netns exec "$server" iperf3 -s -D -I "$work/iperf-$server.pid" >/dev/null
  servers+=("$server")
done
sleep 0.5
for entry in "${paths[@]}"; do # warm-up: ARP, the neighbours
  read -r key client server address label <<<"$entry"
  secs=1 goodput "$client" "$address" >/dev/null
done
for ((r = 0; r < iperf_reps; r++)); do
  n=${#paths[@]}
  for ((j = 0; j < n; j++)); do # a rotating order
    read -r key client server address label <<<"${paths[$(((j + r) % n))]}"
    goodput "$client" "$address" >> "$work/bw-$key"
  done
done
for server in "${servers[@]}"; do
  kill "$(cat "$work/iperf-$server.pid")" 2>/dev/null || true
done

echo
echo "iperf3 TCP, $secs s runs, medians of $iperf_reps (interleaved), Mbit/s (TCG: compare ratios)"
printf '%-62s %9s %14s %14s %10s  %s\n' path median "of hand pod" "of hand node" \
  "of under" "runs"
m_hand_pod=$(median < "$work/bw-hand_pod")
m_hand=$(median < "$work/bw-hand")
m_under=$(median < "$work/bw-under")
for entry in "${paths[@]}"; do
  read -r key client server address label <<<"$entry"
  m=$(median < "$work/bw-$key")
  runs=$(awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1000000}' "$work/bw-$key")
  printf '%-62s %9.1f %13.3fx %13.3fx %9.3fx  %s\n' "${label//-/ }" \
    "$(echo "$m / 1000000" | bc -l)" "$(echo "$m / $m_hand_pod" | bc -l)" \
    "$(echo "$m / $m_hand" | bc -l)" "$(echo "$m / $m_under" | bc -l)" "$runs"
done
m_ours=$(median < "$work/bw-ours")
printf 'ours / the same pod to pod made by hand: %.3f (goal >= 0.97)\n' \
  "$(echo "$m_ours / $m_hand_pod" | bc -l)"
printf 'ours / hand-made ipip node to node:      %.3f (context)\n' "$(echo "$m_ours / $m_hand" | bc -l)"
printf 'ours / underlay:                         %.3f (context)\n' "$(echo "$m_ours / $m_under" | bc -l)"
