#!/usr/bin/env bash
# The benchmark: installs what it needs from Debian's packages, builds azlb
# and the latency tool, and runs bench/run.py (about 9 minutes, at most 12).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
need=()
for p in haproxy nginx libnginx-mod-stream wrk iperf3 procps linux-perf; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts the packaged services; the benchmark runs its own.
  $sudo systemctl stop nginx haproxy 2>/dev/null || $sudo pkill -x nginx 2>/dev/null || true
fi
scripts/build.sh build
g++ -O2 -std=c++20 -o build/bench-latency bench/latency.cpp
# AZLB_BASELINE=path/to/older/azlb adds that build as a row ("before"), in the same run.
exec timeout "$([ -n "${AZLB_BASELINE:-}" ] && echo 780 || echo 720)" python3 bench/run.py
