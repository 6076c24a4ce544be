#!/usr/bin/env bash
# Training on frames beside TorchANI (BENCHMARKS.md, "Training on frames beside TorchANI"): experiments/materials'
# periodic EMT Cu-Ag frames, equal networks (64-64 SiLU per element), descriptor (radial 5.0 A, angular 3.5 A),
# loss (forces and energies, value_weight 10), optimizer (Adam 3e-3, cosine to lr/100), batches (32 frames) and
# epochs (10), float32: gradfit_dist (experiments/materials/compare.yaml, mpirun -n 2, 1 thread a rank) and then
# bench/ani_periodic.py (TorchANI, 2 threads), one seed after the other. Prints each one's test force error, force
# MAE and RMSE, energy MAE per atom and seconds (gradfit_dist: the run's wall_seconds, reading and testing included;
# TorchANI: its training loop).
# Usage: TORCHANI_PYTHON=/tmp/ani-venv/bin/python bench/bench_frames_vs_ani.sh
# Environment: GRADFIT_BIN (default build/src/gradfit_dist), TORCHANI_PYTHON (needed: an interpreter that imports
# torchani, BENCHMARKS.md), SEEDS (default "0 1 2"). The data must exist (experiments/materials/run.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${GRADFIT_BIN:-build/src/gradfit_dist}")
. bench/lib.sh  # $py, $work
data=experiments/materials/data
[ -n "${TORCHANI_PYTHON:-}" ] || { echo "set TORCHANI_PYTHON to an interpreter that imports torchani" >&2; exit 1; }
if [ ! -f $data/train.h5 ] || [ ! -f $data/test.h5 ]; then
  echo "no $data/train.h5 or test.h5: experiments/materials/run.sh makes them" >&2
  exit 1
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F)"
for seed in ${SEEDS:-0 1 2}; do
  (cd experiments/materials && mpirun -n 2 "$bin" --threads 1 --out "$work/s$seed" --set train.seed=$seed \
    compare.yaml >/dev/null)
  "$py" - "$work/s$seed/results.h5" "$seed" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    (run,) = f["runs"].values()
    a = run.attrs
    print(f"gradfit_dist, seed {sys.argv[2]}: test relative force error {a['test_rel_grad_error']:.4f}, force MAE "
          f"{a['test_grad_mae']:.4f} eV/A, RMSE {a['test_grad_rmse']:.4f} eV/A, energy MAE "
          f"{1000 * a['test_value_mae_per_atom']:.2f} meV/atom; {a['wall_seconds']:.1f} s")
PY
  echo "TorchANI, seed $seed: $("$TORCHANI_PYTHON" -W ignore bench/ani_periodic.py $data/train.h5 $data/test.h5 \
    --radial-cutoff 5.0 --angular-cutoff 3.5 --epochs 10 --batch 32 --lr 3e-3 --value-weight 10 --threads 2 \
    --seed "$seed")"
done
