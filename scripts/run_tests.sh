#!/usr/bin/env bash
# Sets up, builds, and runs the whole test suite (unit, MPI and end-to-end tests) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${GRADFIT_JOBS:-2}"
