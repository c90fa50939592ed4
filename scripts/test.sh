#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test
# suite twice: on the normal build (gcc), then on one with AddressSanitizer
# and UndefinedBehaviorSanitizer built by clang, which also builds the
# libFuzzer targets; they run last, for AZLB_FUZZ_SECONDS each (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
# Three suites at a time on two cores: most of their time is spent waiting on
# sockets, daemons and timers (under ASan, 230 s against 297 s at -j2).
ctest --test-dir build --output-on-failure -j3
# clang compiles the sanitizer build in about half of gcc's time.
CC=clang CXX=clang++ scripts/build.sh build-asan -DAZLB_SANITIZE=ON -DAZLB_FUZZ=ON \
  -DAZLB_FUZZ_SECONDS="${AZLB_FUZZ_SECONDS:-15}"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
ctest --test-dir build-asan --output-on-failure -j3 -LE fuzz
# The two fuzzers side by side, one core each, after everything else.
ctest --test-dir build-asan --output-on-failure -j2 -L fuzz
