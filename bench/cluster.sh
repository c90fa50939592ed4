#!/usr/bin/env bash
# The cluster's benchmark, as root on this machine (about 2 minutes): direct
# server return against going to a member directly, through a router, in the
# network namespaces of scripts/netns-cluster.sh; and the time to rebuild and
# apply the Maglev table of a set of 1,000 members. Writes
# bench/cluster-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
scripts/build.sh build
exec timeout 400 python3 bench/cluster.py
