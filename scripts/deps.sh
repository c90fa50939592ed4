#!/usr/bin/env bash
# Installs, from Debian's packages, whatever azlb's build, tests and demo need
# and the machine lacks. Run as root (or with sudo) on Debian bookworm.
set -euo pipefail
packages=(build-essential cmake pkg-config python3 bash
          libcli11-dev libtomlplusplus-dev liburing-dev doctest-dev libcurl4-openssl-dev nlohmann-json3-dev
          # the NAT data plane: libnftables; nft to inspect it, conntrack in its tests
          libnftables-dev libnetfilter-conntrack-dev nftables conntrack
          curl
          # the sanitizer build and its fuzz targets (libFuzzer)
          clang libclang-rt-14-dev
          # real clients and servers for the end-to-end tests (tests/e2e/test_real_clients.py)
          redis-server redis-tools openssl dnsmasq-base dnsutils
          # a real PROXY protocol consumer (tests/e2e/test_engine_production.py)
          nginx
          # a state in etcd: a real 3-member cluster in tests/e2e/test_store_etcd.py
          etcd-server etcd-client
          # BGP for many hosts: the shipped dist/bird config learns azlb's routes (tests/e2e/test_engine_announce.py)
          bird2
          # ...and dist/frr's, run by one of the two hosts of tests/e2e/test_cluster.py
          frr
          # the logrotate file is checked with logrotate -d (tests/e2e/test_service_files.py)
          logrotate)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged nginx on port 80 (and bird on the host's routes); the tests and the benchmark run their own.
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  $sudo systemctl stop nginx 2>/dev/null || $sudo pkill -x nginx 2>/dev/null || true
fi
if [[ " ${missing[*]} " == *" bird2 "* ]]; then
  $sudo systemctl stop bird 2>/dev/null || $sudo pkill -x bird 2>/dev/null || true
fi
if [[ " ${missing[*]} " == *" frr "* ]]; then
  $sudo systemctl stop frr 2>/dev/null || $sudo pkill -x watchfrr 2>/dev/null || true
fi
