#!/usr/bin/env bash
# Runs the numerics tests (equality with PyTorch, L-BFGS, the analytic engine against autograd, ensembles,
# optimizers, schedules, rank counts) in an existing build with the CPU kernels forced to another level, so that a
# tolerance that only held for one CPU's rounding fails here. Default: LibTorch's x86-64 baseline
# (ATEN_CPU_CAPABILITY=default) and the project's baseline kernels (GRADFIT_CPU_KERNELS=baseline); set either
# variable to choose another level (e.g. ATEN_CPU_CAPABILITY=avx2). Run scripts/run_tests.sh (or build.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."
export ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-default}
export GRADFIT_CPU_KERNELS=${GRADFIT_CPU_KERNELS:-baseline}
numerics='Lbfgs|PyTorch|pytorch|Analytic|Ensemble|Optimizer|Schedule|Kernels|LossGradient|Train\.|rank_invariance|data_parallel'
echo "numerics tests with ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY GRADFIT_CPU_KERNELS=$GRADFIT_CPU_KERNELS"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${GRADFIT_JOBS:-2}" -R "$numerics"
