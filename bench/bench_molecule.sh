#!/usr/bin/env bash
# Molecules: ethanol from GFN2-xTB MD (experiments/molecule/make_data.py and scripts/ase_import.py, as run.sh there;
# made first when missing, a few minutes),
# trained on frames 0-1999 and tested on the later frames 2000-2999.
#  1. Accuracy and time: gradfit_dist (2 ranks) with model.features identity and inverse_distances, each with and
#     without data.standardize, beside the PyTorch script a user would write (bench/molecule_peer.py, 2 threads)
#     with the same features, standardization, widths (64-64 SiLU), optimizer (Adam 3e-3, cosine to lr/100), batch
#     (128) and epochs (300, float32): each one's training wall time and held-out force error (gradfit_dist's from
#     `eval` on test.h5).
#  2. Cost: with a = 9 atoms, widths 128-128-128, N = 32768 rows and float32, full batch, the epoch time with
#     inverse_distances against identity (1 rank; the median of 20 epochs, alternating the two twice).
# Usage: bench/bench_molecule.sh [--epochs 300]
# Environment: GRADFIT_BIN (default build/src/gradfit_dist), PYTHON (an interpreter with h5py and torch; default:
# python3, else /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
epochs=300
[ "${1:-}" = --epochs ] && epochs=$2
. bench/lib.sh  # $py, $work
data=experiments/molecule/data
[ -f "$data/ethanol_md.extxyz" ] || "$py" experiments/molecule/make_data.py --out "$data"
[ -f "$data/train.h5" ] || "$py" scripts/ase_import.py "$data/ethanol_md.extxyz" --index :2000 --out "$data/train.h5"
[ -f "$data/test.h5" ] || "$py" scripts/ase_import.py "$data/ethanol_md.extxyz" --index 2000: --out "$data/test.h5"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F)"

# 1. Accuracy and time.
for setting in identity inverse_distances identity+standardize inverse_distances+standardize; do
  features=${setting%+standardize}
  standardize=false peer_flag=
  [ "$setting" = "$features" ] || standardize=true peer_flag=--standardize
  cat >"$work/$setting.yaml" <<YAML
name: $features
data: {target: file, path: $PWD/$data/train.h5, standardize: $standardize}
model: {widths: [64, 64], activation: silu, dtype: float32, features: $features}
optimizer: {name: adam, lr: 0.003, schedule: cosine}
train: {epochs: $epochs, batch_size: 128}
YAML
  start=$(date +%s%N)
  mpirun --oversubscribe -n 2 "$bin" --out "$work/$setting" "$work/$setting.yaml" >"$work/$setting.log" 2>&1 ||
    { cat "$work/$setting.log" >&2; exit 1; }
  end=$(date +%s%N)
  mpirun --oversubscribe -n 2 "$bin" eval "$work/$setting/results.h5" "$data/test.h5" --out "$work/$setting.pred.h5" \
    >"$work/$setting.eval" 2>&1 || { cat "$work/$setting.eval" >&2; exit 1; }
  "$py" - "$work/$setting.pred.h5" "$data/test.h5" "$setting" "$(((end - start) / 1000000))" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as p, h5py.File(sys.argv[2]) as d:
    e, s = p["grad"][:] - d["grad"][:], d["grad"][:]
print(f"gradfit_dist {sys.argv[3]}: {int(sys.argv[4]) / 1000:.1f} s (whole command, 2 ranks); test: relative gradient "
      f"error {np.linalg.norm(e) / np.linalg.norm(s):.4f}, force MAE {np.abs(e).mean():.4f} eV/A, "
      f"RMSE {np.sqrt((e * e).mean()):.4f} eV/A")
PY
  "$py" bench/molecule_peer.py "$data/train.h5" "$data/test.h5" --features "$features" --epochs "$epochs" --threads 2 \
    $peer_flag
done

# 2. Cost of the features: the same rows, 27 coordinates or their 36 inverse distances into 128-128-128.
"$py" - "$work/big.h5" "$data/train.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[2]) as f:
    x, g = f["x"][:], f["grad"][:]
rows = np.random.default_rng(0).integers(0, len(x), 32768)
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x[rows], g[rows]
PY
for round in 1 2; do
  for features in identity inverse_distances; do
    printf 'name: cost\ndata: {target: file, path: %s}\nmodel: {widths: [128, 128, 128], activation: silu, features: %s}\ntrain: {epochs: 20}\n' \
      "$work/big.h5" "$features" >"$work/cost.yaml"
    mpirun -n 1 "$bin" --threads 2 --fresh --out "$work/cost_$features" "$work/cost.yaml" >/dev/null 2>&1
    "$py" - "$work/cost_$features/results.h5" "$features" "$round" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as f:
    seconds = f["runs"]["cost"]["epoch_seconds"][:]
print(f"cost, round {sys.argv[3]}: {sys.argv[2]}: median epoch {np.median(seconds[1:]) * 1000:.1f} ms (N = 32768, 128-128-128, float32, 1 rank, 2 threads)")
PY
  done
done
