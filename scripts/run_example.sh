#!/usr/bin/env bash
# Sets up, builds, and runs the built-in example on two MPI ranks:
#   mpirun -n 2 build/src/gradfit_dist experiments/seed_quadratic.yaml
# Results go to results/seed_quadratic/ (--fresh: an earlier result there is replaced, not resumed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_TARGET=gradfit_dist scripts/build.sh
build_dir=${BUILD_DIR:-build}
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
oversubscribe=()
if [ "$(nproc)" -lt 2 ]; then oversubscribe=(--oversubscribe); fi
mpirun "${oversubscribe[@]}" -n 2 "$build_dir/src/gradfit_dist" --fresh experiments/seed_quadratic.yaml
