#!/usr/bin/env bash
# README command 1: install what is missing, build, and walk through the
# portal's four steps on a throw-away state file.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
azlb() { build/cli/azlb "$@"; }
export AZLB_STATE
AZLB_STATE=$(mktemp -d)/state.toml
trap 'rm -rf "$(dirname "$AZLB_STATE")"' EXIT
say() { printf '\n\033[1m$ azlb %s\033[0m\n' "$*"; azlb "$@"; }

echo "Demo state: $AZLB_STATE"
say vm create vm1 --cloud-service web                      # step 1: the first VM
say vm create vm2 --cloud-service web                      # step 2: more VMs in the service
say vm create vm3 --cloud-service web
say endpoint add vm1 --name http --protocol tcp --public-port 8080 --private-port 80
say lbset create webset --vm vm1 --endpoint http --probe-protocol http --probe-path /   # step 3
say lbset join webset --vm vm2                             # step 4
say lbset join webset --vm vm3
say status
