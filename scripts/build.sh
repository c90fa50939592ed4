#!/usr/bin/env bash
# Configures and builds into DIR (default build/); extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
# Release: the demo, the tests and the benchmark share one build, and without
# full debug info it compiles in about two thirds of the time.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# AZLB_TARGET: build one target (the demo needs only azlb), not the tests too.
cmake --build "$dir" -j"$(nproc)" ${AZLB_TARGET:+--target "$AZLB_TARGET"}
