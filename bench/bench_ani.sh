#!/usr/bin/env bash
# Atom-centred networks beside TorchANI: for each molecule, GFN2-xTB MD made by experiments/molecule/make_data.py
# (ethanol, then --molecules' others; made first when missing, minutes each), imported with scripts/ase_import.py,
# trained on frames 0-1999 and tested on the later frames 2000-2999:
#  - gradfit_dist, model.features atom_centered (ANI-1x's descriptor, the analytic engine), 2 ranks;
#  - TorchANI's AEVComputer and ANIModel with the same descriptor (bench/ani_peer.py), 2 threads;
#  - gradfit_dist, model.features inverse_distances with data.standardize (docs/molecules.md's best), 2 ranks;
# all with widths 64-64 SiLU, Adam 3e-3 with a cosine schedule to lr/100, batch 128, the same epochs, float32, and
# --seeds seeds each (0, 1, ...: initial weights and batch order): per seed the held-out force error (gradfit_dist's
# from `eval` on test.h5), and each one's wall time for all its seeds (gradfit_dist: the whole command, which
# trains the seeds one after another; TorchANI: its training loops).
# Usage: bench/bench_ani.sh [--epochs 50] [--seeds 3] [--molecules "ethanol CH3CONH2"] [--without-torchani]
# (--without-torchani: gradfit_dist's two models alone, e.g. at more epochs than TorchANI's time allows here.)
# Environment: TORCHANI_PYTHON (an interpreter that imports torchani: see BENCHMARKS.md; required with TorchANI),
# GRADFIT_BIN (default build/src/gradfit_dist), PYTHON (an interpreter with h5py, ase and torch; default: python3,
# else /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
epochs=50 seeds=3 molecules="ethanol CH3CONH2" peer=yes
while [ $# -gt 0 ]; do
  case $1 in
    --without-torchani) peer=no && shift && continue ;;
    --epochs) epochs=$2 ;;
    --seeds) seeds=$2 ;;
    --molecules) molecules=$2 ;;
    *) echo "bench_ani.sh: unknown argument $1" >&2 && exit 2 ;;
  esac
  shift 2
done
[ "$peer" = no ] || [ -n "${TORCHANI_PYTHON:-}" ] ||
  { echo "bench_ani.sh: set TORCHANI_PYTHON (see BENCHMARKS.md)" >&2; exit 2; }
. bench/lib.sh  # $py, $work
data=experiments/molecule/data
seed_list=$(seq -s, 0 $((seeds - 1)))
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F)"

# gradfit_dist's runs of FEATURES (and STANDARDIZE) on TRAIN, each evaluated on TEST.
gradfit() {
  local mol=$1 features=$2 standardize=$3 train=$4 test=$5 out=$work/$1-$2
  cat >"$out.yaml" <<YAML
name: $features
data: {target: file, path: $PWD/$train, standardize: $standardize}
model: {widths: [64, 64], activation: silu, dtype: float32, features: $features}
optimizer: {name: adam, lr: 0.003, schedule: cosine}
train: {epochs: $epochs, batch_size: 128}
sweep:
  grid: {train.seed: [$seed_list]}
YAML
  local start end
  start=$(date +%s%N)
  mpirun --oversubscribe -n 2 "$bin" --out "$out" "$out.yaml" >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  end=$(date +%s%N)
  for run in $("$py" -c 'import sys, h5py; print(" ".join(h5py.File(sys.argv[1])["runs"]))' "$out/results.h5"); do
    mpirun --oversubscribe -n 2 "$bin" eval "$out/results.h5" "$test" --run "$run" --out "$out.$run.pred.h5" \
      >"$out.eval" 2>&1 || { cat "$out.eval" >&2; exit 1; }
  done
  "$py" - "$out" "$test" "$mol $features${standardize/false/}" "$(((end - start) / 1000000))" <<'PY'
import glob, sys, h5py, numpy as np
errors = []
with h5py.File(sys.argv[2]) as d:
    s = d["grad"][:]
for path in sorted(glob.glob(sys.argv[1] + ".*.pred.h5")):
    with h5py.File(path) as p:
        e = p["grad"][:] - s
    errors.append((np.linalg.norm(e) / np.linalg.norm(s), np.abs(e).mean()))
errors = np.array(errors)
print(f"gradfit_dist {sys.argv[3].replace('true', ', standardized')}: {int(sys.argv[4]) / 1000:.1f} s for "
      f"{len(errors)} seeds (whole command, 2 ranks); test relative force error per seed "
      f"{' '.join(f'{r:.4f}' for r in errors[:, 0])} (mean {errors[:, 0].mean():.4f}), force MAE mean "
      f"{errors[:, 1].mean():.4f} eV/A")
PY
}

for mol in $molecules; do
  [ -f "$data/${mol}_md.extxyz" ] || "$py" experiments/molecule/make_data.py --molecule "$mol" --out "$data"
  train=$data/train.h5 test=$data/test.h5
  if [ "$mol" != ethanol ]; then
    train=$data/${mol}_train.h5 test=$data/${mol}_test.h5
  fi
  [ -f "$train" ] || "$py" scripts/ase_import.py "$data/${mol}_md.extxyz" --index :2000 --out "$train"
  [ -f "$test" ] || "$py" scripts/ase_import.py "$data/${mol}_md.extxyz" --index 2000: --out "$test"
  gradfit "$mol" atom_centered false "$train" "$test"
  gradfit "$mol" inverse_distances true "$train" "$test"
  [ "$peer" = yes ] || continue
  for seed in $(seq 0 $((seeds - 1))); do
    printf '%s seed %s: ' "$mol" "$seed"
    "$TORCHANI_PYTHON" -W ignore bench/ani_peer.py "$train" "$test" --epochs "$epochs" --threads 2 --seed "$seed"
  done
done
