#!/usr/bin/env bash
# One pod made by hand with ip(8): the data plane our overlays' pod side makes
# (overlay/pod_side.cpp), as the reference of the benchmarks' pod-to-pod throughput rows
# (bench/vxlan_bench.cpp, bench/ipip_vm.sh), so that their ratio measures our plugin's data
# plane against the same data plane made by hand:
#   - a veth pair, eth0 in the pod netns and hp<INDEX> in the node netns, both at MTU;
#   - the pod: 10.98.<INDEX>.2/32 on eth0, a default route via the link-local gateway
#     169.254.1.1 onlink;
#   - the node: proxy ARP (without its random delay) on hp<INDEX>, which answers for the
#     gateway, a /32 route to the pod through it, and the other pod's /24 through TUNNEL: via
#     NEXTHOP onlink, or straight through the device when NEXTHOP is empty (a point-to-point
#     tunnel).
# Forwarding on the node is left as it is (the lab's plugin ADDs have set it).
#   bench/hand_pod.sh NODE_NETNS POD_NETNS INDEX(0|1) MTU TUNNEL [NEXTHOP]
set -euo pipefail
node=$1 pod=$2 i=$3 mtu=$4 tunnel=$5 nexthop=${6:-}
[[ $i == [01] ]] || {
  echo "hand_pod.sh: INDEX must be 0 or 1, not \"$i\"" >&2
  exit 2
}
host=hp$i
ip -n "$node" link add "$host" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$pod"
ip -n "$pod" link set lo up
ip -n "$pod" addr add "10.98.$i.2/32" dev eth0
ip -n "$pod" link set eth0 up
ip -n "$pod" route add default via 169.254.1.1 dev eth0 onlink
ip netns exec "$node" sysctl -qw "net.ipv4.conf.$host.proxy_arp=1" \
  "net.ipv4.neigh.$host.proxy_delay=0"
ip -n "$node" link set "$host" up
ip -n "$node" route add "10.98.$i.2/32" dev "$host" scope link
if [ -n "$nexthop" ]; then
  ip -n "$node" route add "10.98.$((1 - i)).0/24" via "$nexthop" dev "$tunnel" onlink
else
  ip -n "$node" route add "10.98.$((1 - i)).0/24" dev "$tunnel"
fi
