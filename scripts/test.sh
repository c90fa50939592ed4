#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test
# suite twice: on the normal build, then on one with AddressSanitizer and
# UndefinedBehaviorSanitizer (AZLB_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
# -j4 on 2 cores: the end-to-end suites spend most of their time waiting on
# sockets and probe intervals, so four at a time overlap that waiting.
ctest --test-dir build --output-on-failure -j4
scripts/build.sh build-asan -DAZLB_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j4
