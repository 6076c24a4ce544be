#!/usr/bin/env bash
# Configures and builds gradfit_dist and its tests into ${BUILD_DIR:-build} (only the target BUILD_TARGET when
# set). Extra arguments go to cmake's configure step (e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j "${GRADFIT_JOBS:-2}" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
