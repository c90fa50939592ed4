#!/usr/bin/env bash
# A two-host azlb cluster on this one machine, in network namespaces (as
# root): a client, a router running BIRD with ECMP, two balancer hosts each
# running BIRD and `azlb engine start --announce` on one state in etcd, and
# three members that answer clients directly (direct server return), and
# beside it a proxied service whose VIP both hosts own and accept. The
# BIRD configs are dist/bird's, as they ship, with the lines they mark
# CHANGE changed for each host. Addresses from 198.18.0.0/15, inside the
# namespaces only:
#
#   client 198.18.0.2 -- router 198.18.0.1 | 198.18.1.1 (a bridge; etcd)
#                          h1 198.18.1.2, h2 198.18.1.3 (azlb hosts)
#                          vm1..vm3 198.18.1.11-13 (members; VIP 198.18.2.1 on lo)
#                          app1..app3 198.18.1.21-23 (the proxied service's VMs, on vm1..vm3)
#   the proxied VIP 198.18.3.1 (port 80) is on h1's and h2's lo
#
#   scripts/netns-cluster.sh up              build it and wait for the routes
#   scripts/netns-cluster.sh on HOST ARGS    azlb ARGS as it runs on HOST (h1, h2, vm1...)
#   scripts/netns-cluster.sh down            remove everything it made
set -euo pipefail

AZLB=${AZLB:-azlb}
P=${AZLB_CLUSTER_NAME:-azc}             # namespaces $P-client, $P-router, $P-h1...
DIR=${AZLB_CLUSTER_DIR:-/tmp/azlb-cluster}
SRC=$(cd "$(dirname "$0")/.." && pwd)
VIP=198.18.2.1
PROXY_VIP=198.18.3.1
STATE=etcd://198.18.1.1:2379/azlb/cluster
declare -A ADDR=([h1]=198.18.1.2 [h2]=198.18.1.3 [vm1]=198.18.1.11 [vm2]=198.18.1.12 [vm3]=198.18.1.13
                 [app1]=198.18.1.21 [app2]=198.18.1.22 [app3]=198.18.1.23)
NODES=(client router h1 h2 vm1 vm2 vm3)

in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
on() {
  local host=$1; shift
  mkdir -p "$DIR/$host"
  in_ns "$host" env AZLB_STATE="$STATE" AZLB_HOST_NAME="$host" AZLB_RUN_DIR="$DIR/$host" "$AZLB" "$@"
}
background() {  # NAME NS COMMAND...: runs it in namespace NS, its pid in $DIR/NAME.pid
  local name=$1 ns=$2; shift 2
  ip netns exec "$P-$ns" "$@" >"$DIR/$name.log" 2>&1 &  # ip execs the command: $! is its pid
  echo $! >"$DIR/$name.pid"
}
wait_for() {  # SECONDS WHAT COMMAND...
  local until=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < until)) || { echo "netns-cluster: timed out waiting for $what" >&2; exit 1; }
    sleep 0.2
  done
}

down() {
  for h in h1 h2; do [ -e "/run/netns/$P-$h" ] && on "$h" engine stop >/dev/null 2>&1 || true; done
  for f in "$DIR"/*.pid; do [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  # Whatever still runs in a namespace (a daemon that outlived its parent) goes with it.
  for n in "${NODES[@]}"; do
    [ -e "/run/netns/$P-$n" ] || continue
    ip netns pids "$P-$n" | xargs -r kill -9 2>/dev/null || true
    ip netns del "$P-$n" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

up() {
  down
  mkdir -p "$DIR"
  for n in "${NODES[@]}"; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
  # client -- router
  ip link add c0 netns "$P-client" type veth peer name r0 netns "$P-router"
  ip -n "$P-client" addr add 198.18.0.2/30 dev c0 && ip -n "$P-client" link set c0 up
  ip -n "$P-router" addr add 198.18.0.1/30 dev r0 && ip -n "$P-router" link set r0 up
  ip -n "$P-client" route add default via 198.18.0.1
  # one link (a bridge in the router) for the router, the hosts and the members
  ip -n "$P-router" link add br0 type bridge
  ip -n "$P-router" addr add 198.18.1.1/24 dev br0 && ip -n "$P-router" link set br0 up
  for n in h1 h2 vm1 vm2 vm3; do
    ip link add eth0 netns "$P-$n" type veth peer name "p$n" netns "$P-router"
    ip -n "$P-router" link set "p$n" master br0 && ip -n "$P-router" link set "p$n" up
    ip -n "$P-$n" addr add "${ADDR[$n]}/24" dev eth0 && ip -n "$P-$n" link set eth0 up
    ip -n "$P-$n" route add default via 198.18.1.1
  done
  in_ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
  # A balancer host forwards its members' flows back out of the link they
  # came in on: forwarding on, ICMP redirects off.
  for h in h1 h2; do
    in_ns "$h" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
      net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
    # The proxied service's VIP is each host's own: its engine accepts there.
    ip -n "$P-$h" addr add "$PROXY_VIP/32" dev lo
  done
  for i in 1 2 3; do ip -n "$P-vm$i" addr add "${ADDR[app$i]}/24" dev eth0; done
  # The state: one etcd member on the router's link.
  background etcd router etcd --name e --data-dir "$DIR/etcd" --log-level error \
    --listen-client-urls http://198.18.1.1:2379 --advertise-client-urls http://198.18.1.1:2379 \
    --listen-peer-urls http://198.18.1.1:2380 --initial-advertise-peer-urls http://198.18.1.1:2380 \
    --initial-cluster e=http://198.18.1.1:2380
  wait_for 20 etcd on h1 vm list
  on h1 service create web --vip "$VIP" --subnet 198.18.1.0/24 --dataplane nat
  for vm in vm1 vm2 vm3; do on h1 vm create "$vm" --cloud-service web --private-ip "${ADDR[$vm]}" --no-default-endpoints; done
  on h1 endpoint add vm1 --name http --protocol tcp --public-port 8080 --private-port 8080 --lbset web \
    --direct-server-return --probe-interval 1 --probe-timeout 3
  on h1 lbset join web --vm vm2
  on h1 lbset join web --vm vm3 --weight 2
  # The proxied service: its connections live on the host that accepted them.
  on h1 service create front --vip "$PROXY_VIP" --subnet 198.18.1.0/24
  for i in 1 2 3; do on h1 vm create "app$i" --cloud-service front --private-ip "${ADDR[app$i]}" --no-default-endpoints; done
  on h1 endpoint add app1 --name http --protocol tcp --public-port 80 --private-port 8080 --lbset front \
    --probe-interval 1 --probe-timeout 3
  on h1 lbset join front --vm app2
  on h1 lbset join front --vm app3
  # Each member: the VIP on its loopback, and a stand-in web server.
  for vm in vm1 vm2 vm3; do
    on "$vm" vm dsr-setup "$vm" --apply
    mkdir -p "$DIR/$vm"
    background "serve-$vm" "$vm" env AZLB_STATE="$STATE" AZLB_RUN_DIR="$DIR/$vm" "$AZLB" vm serve "$vm"
  done
  for i in 1 2 3; do
    mkdir -p "$DIR/app$i"
    background "serve-app$i" "vm$i" env AZLB_STATE="$STATE" AZLB_RUN_DIR="$DIR/app$i" "$AZLB" vm serve "app$i"
  done
  # BGP: the router merges what both hosts announce into one ECMP route.
  background bird-router router bird -f -c "$SRC/dist/bird/router-example.conf" -s "$DIR/bird-router.ctl"
  local asn=65001
  for h in h1 h2; do
    sed -e "s/^router id 198.18.1.2;/router id ${ADDR[$h]};/" -e "s/local as 65001;/local as $asn;/" \
      "$SRC/dist/bird/azlb-host.conf" >"$DIR/bird-$h.conf"
    background "bird-$h" "$h" bird -f -c "$DIR/bird-$h.conf" -s "$DIR/bird-$h.ctl"
    on "$h" engine start --announce
    asn=$((asn + 1))
  done
  for vip in "$VIP" "$PROXY_VIP"; do
    wait_for 30 "the router's route to $vip over both hosts" \
      bash -c "ip -n $P-router route show $vip | grep -q 'via 198.18.1.2 ' && ip -n $P-router route show $vip | grep -q 'via 198.18.1.3 '"
  done
  echo "cluster up: VIP $VIP over h1 and h2 (ip netns exec $P-client curl http://$VIP:8080/), proxied VIP $PROXY_VIP (port 80)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  on) shift; on "$@" ;;
  *) echo "usage: $0 up | down | on HOST AZLB-ARGS..." >&2; exit 2 ;;
esac
