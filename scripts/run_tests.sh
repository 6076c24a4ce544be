#!/usr/bin/env bash
# Sets up, builds, and runs the whole test suite (unit, MPI and end-to-end tests) with ctest. Extra arguments go to
# cmake's configure step, as for scripts/build.sh (e.g. -DGRADFIT_WARNINGS_AS_ERRORS=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${GRADFIT_JOBS:-2}"
