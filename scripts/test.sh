#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test
# suite twice: on the normal build, then on one with AddressSanitizer and
# UndefinedBehaviorSanitizer (AZLB_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
ctest --test-dir build --output-on-failure -j2
scripts/build.sh build-asan -DAZLB_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2
