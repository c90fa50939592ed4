#!/usr/bin/env bash
# README command 1: install what is missing, build, and show azlb's main job
# end to end on loopback: three VMs with web servers, the portal's four
# steps, the engine spreading a burst of requests, one VM failing its probe
# and traffic moving away, then a clean stop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
AZLB_TARGET=azlb scripts/build.sh build >/dev/null  # what the demo runs, not the tests
AZLB=$PWD/build/cli/azlb
azlb() { "$AZLB" "$@"; }
export AZLB_STATE
work=$(mktemp -d)
AZLB_STATE=$work/state.toml
servers=()
cleanup() {
  azlb engine stop >/dev/null 2>&1 || true
  [ ${#servers[@]} -eq 0 ] || kill "${servers[@]}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m$ azlb %s\033[0m\n' "$*"; azlb "$@"; }
port=${AZLB_DEMO_PORT:-28080}

burst() {  # $1 requests to the VIP; prints how many each VM answered
  local failed=0
  for _ in $(seq "$1"); do
    curl -s --max-time 2 "http://127.0.0.1:$port/" || failed=$((failed + 1))
  done | sort | uniq -c | awk '{printf "  %-4s answered %d\n", $2, $1}'
  echo "  failed requests: $failed"
}

echo "Demo state: $AZLB_STATE"
# The seed's VMs, without the default SSH endpoints: an sshd on this machine
# would already hold port 22.
say vm create vm1 --cloud-service web --no-default-endpoints        # step 1: the first VM
say vm create vm2 --cloud-service web --no-default-endpoints        # step 2: more VMs
say vm create vm3 --cloud-service web --no-default-endpoints
say endpoint add vm1 --name http --protocol tcp --public-port "$port" --private-port 8000
say lbset create webset --vm vm1 --endpoint http --probe-protocol http --probe-interval 1 --probe-timeout 3  # step 3
say lbset join webset --vm vm2                                      # step 4
say lbset join webset --vm vm3

printf '\n\033[1mEach VM gets a web server on its private IP that answers with its name.\033[0m\n'
for vm in vm1 vm2 vm3; do
  "$AZLB" -q vm serve "$vm" >/dev/null &   # $! must be the server itself; its errors show
  servers+=($!)
done
sleep 0.3
for i in 0 1 2; do
  # Another program on a VM's address and port (an earlier demo's server?) stops the demo here, said plainly.
  kill -0 "${servers[$i]}" 2>/dev/null || { echo "demo: vm$((i + 1))'s web server could not start (above)" >&2; exit 1; }
done
say engine start
sleep 1.5   # the first probes
say status

printf '\n\033[1mA burst of 300 requests to http://127.0.0.1:%s/ (a new connection each):\033[0m\n' "$port"
burst 300

printf '\n\033[1mvm2 fails: its web server stops.\033[0m\n'
kill "${servers[1]}"
printf '\033[1mRequests right away (the probe has not noticed yet; the engine retries another VM):\033[0m\n'
burst 60
sleep 4     # more than the probe timeout
say status
printf '\n\033[1mAnother burst of 300: vm2 gets nothing.\033[0m\n'
burst 300

say engine stop
