#!/usr/bin/env bash
# Atom-centred networks beside TorchANI: for each molecule, GFN2-xTB MD made by experiments/molecule/make_data.py
# (ethanol, then --molecule's others; made first when missing, minutes each), imported with scripts/ase_import.py,
# trained on frames 0-1999 and tested on the later frames 2000-2999:
#  - gradfit_dist, model.features atom_centered (ANI-1x's descriptor, the analytic engine), 2 ranks;
#  - TorchANI's AEVComputer and ANIModel with the same descriptor (bench/ani_peer.py), 2 threads;
#  - gradfit_dist, model.features inverse_distances, 2 ranks, at the same budget;
# all with widths 64-64 SiLU, Adam 3e-3 with a cosine schedule to lr/100, batch 128, the same epochs, float32:
# each one's training wall time and held-out force error (gradfit_dist's from `eval` on test.h5).
# Usage: bench/bench_ani.sh [--epochs 100] [--molecules "ethanol CH3CONH2"]
# Environment: TORCHANI_PYTHON (an interpreter that imports torchani: see BENCHMARKS.md; required), GRADFIT_BIN
# (default build/src/gradfit_dist), PYTHON (an interpreter with h5py, ase and torch; default: python3, else
# /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
epochs=100 molecules="ethanol CH3CONH2"
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) epochs=$2 ;;
    --molecules) molecules=$2 ;;
    *) echo "bench_ani.sh: unknown argument $1" >&2 && exit 2 ;;
  esac
  shift 2
done
[ -n "${TORCHANI_PYTHON:-}" ] || { echo "bench_ani.sh: set TORCHANI_PYTHON (see BENCHMARKS.md)" >&2; exit 2; }
. bench/lib.sh  # $py, $work
data=experiments/molecule/data
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F)"

for mol in $molecules; do
  [ -f "$data/${mol}_md.extxyz" ] || "$py" experiments/molecule/make_data.py --molecule "$mol" --out "$data"
  train=$data/train.h5 test=$data/test.h5
  if [ "$mol" != ethanol ]; then
    train=$data/${mol}_train.h5 test=$data/${mol}_test.h5
  fi
  [ -f "$train" ] || "$py" scripts/ase_import.py "$data/${mol}_md.extxyz" --index :2000 --out "$train"
  [ -f "$test" ] || "$py" scripts/ase_import.py "$data/${mol}_md.extxyz" --index 2000: --out "$test"
  for features in atom_centered inverse_distances; do
    cat >"$work/$mol-$features.yaml" <<YAML
name: $features
data: {target: file, path: $PWD/$train}
model: {widths: [64, 64], activation: silu, dtype: float32, features: $features}
optimizer: {name: adam, lr: 0.003, schedule: cosine}
train: {epochs: $epochs, batch_size: 128}
YAML
    start=$(date +%s%N)
    mpirun --oversubscribe -n 2 "$bin" --out "$work/$mol-$features" "$work/$mol-$features.yaml" \
      >"$work/$mol-$features.log" 2>&1 || { cat "$work/$mol-$features.log" >&2; exit 1; }
    end=$(date +%s%N)
    mpirun --oversubscribe -n 2 "$bin" eval "$work/$mol-$features/results.h5" "$test" \
      --out "$work/$mol-$features.pred.h5" >"$work/$mol-$features.eval" 2>&1 ||
      { cat "$work/$mol-$features.eval" >&2; exit 1; }
    "$py" - "$work/$mol-$features.pred.h5" "$test" "$mol $features" "$(((end - start) / 1000000))" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as p, h5py.File(sys.argv[2]) as d:
    e, s = p["grad"][:] - d["grad"][:], d["grad"][:]
print(f"gradfit_dist {sys.argv[3]}: {int(sys.argv[4]) / 1000:.1f} s (whole command, 2 ranks); test: relative gradient "
      f"error {np.linalg.norm(e) / np.linalg.norm(s):.4f}, force MAE {np.abs(e).mean():.4f} eV/A, "
      f"RMSE {np.sqrt((e * e).mean()):.4f} eV/A")
PY
  done
  printf '%s ' "$mol"
  "$TORCHANI_PYTHON" -W ignore bench/ani_peer.py "$train" "$test" --epochs "$epochs" --threads 2
done
