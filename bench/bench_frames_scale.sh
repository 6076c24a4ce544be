#!/usr/bin/env bash
# Training on frames at scale (BENCHMARKS.md, "Training on frames at scale"):
#  1. bench/make_scale_frames.py: FRAMES (default 150000) EMT Cu-Ag frames of 32, 36 and 40 atoms in periodic
#     cells (5.4 million atoms at the default), and the first tenth of them (the same frames: frame f depends only
#     on the seed and f). Kept in SCALE_DATA (default: a temporary folder) for a second run.
#  2. For each file (and one of 300 frames: a rank's memory without data): --dry-run's memory estimate with 2
#     ranks, then one epoch with mpirun -n 2 (1 thread a rank): widths 64-64 SiLU, float32, the ANI descriptor at
#     5.0 / 3.5 Å, batch 32 frames, forces and energies (value_weight 10). Each rank's peak resident memory (GNU
#     time), the epoch's seconds, atoms per second per core.
#  3. With TORCHANI_PYTHON (an interpreter that imports torchani, BENCHMARKS.md): bench/ani_periodic.py on the
#     first ANI_FRAMES (default 3000) frames of the tenth, one epoch, the same networks, loss, batch and descriptor,
#     2 threads: atoms per second per core.
# Usage: bench/bench_frames_scale.sh
# Environment: GRADFIT_BIN (default build/src/gradfit_dist), FRAMES, SCALE_DATA, TORCHANI_PYTHON, ANI_FRAMES, SIZES
# (the files trained on, by frames: default "300 FRAMES/10 FRAMES").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
frames=${FRAMES:-150000}
. bench/lib.sh  # $py, $work
data=${SCALE_DATA:-$work}
mkdir -p "$data"
data=$(realpath "$data")
memory=$(free -g | awk '/Mem:/ {print $2}')
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $memory GB; $(date -u +%F)"
[ -f "$data/scale_$frames.h5" ] || "$py" bench/make_scale_frames.py "$data/scale_$frames.h5" --frames "$frames"
tenth=$((frames / 10))
[ -f "$data/scale_$tenth.h5" ] || "$py" bench/make_scale_frames.py "$data/scale_$tenth.h5" --frames "$tenth"
[ -f "$data/scale_300.h5" ] || "$py" bench/make_scale_frames.py "$data/scale_300.h5" --frames 300 --seed 1

# 300 frames first: a rank's memory with next to no data (LibTorch, MPI and the code: what the estimate leaves out).
for n in ${SIZES:-300 $tenth $frames}; do
  cat >"$work/scale.yaml" <<EOF
name: scale
data: {target: file, path: $data/scale_$n.h5}
model: {widths: [64, 64], activation: silu, dtype: float32, features: atom_centered, radial_cutoff: 5.0,
        angular_cutoff: 3.5}
optimizer: {name: adam, lr: 0.003}
train: {epochs: 1, batch_size: 32, value_weight: 10}
EOF
  mpirun -n 2 "$bin" --dry-run "$work/scale.yaml" | grep '^memory estimate' | sed "s/^/$n frames: /"
  mpirun -n 2 /usr/bin/time -f "peak resident %M kB" "$bin" --threads 1 --fresh --out "$work/out" \
    "$work/scale.yaml" >"$work/log" 2>"$work/err" || { cat "$work/err"; exit 1; }
  grep '^peak resident' "$work/err" | sed "s/^/$n frames: a rank's /"
  "$py" - "$work/out/results.h5" "$data/scale_$n.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f, h5py.File(sys.argv[2]) as d:
    seconds, atoms, frames = f["runs"]["scale"]["epoch_seconds"][0], d["numbers"].shape[0], d["atoms"].shape[0]
print(f"{frames} frames, {atoms} atoms: one epoch {seconds:.1f} s, {atoms / seconds / 2:.0f} atoms/s "
      "per core (2 ranks of 1 thread)")
PY
done

if [ -n "${TORCHANI_PYTHON:-}" ]; then
  ani=${ANI_FRAMES:-3000}
  "$TORCHANI_PYTHON" -W ignore - "$data/scale_$tenth.h5" "$work/ani.h5" "$ani" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f, h5py.File(sys.argv[2], "w") as o:
    n = int(sys.argv[3]); atoms = int(f["atoms"][:n].sum())
    for name in ("atoms", "value", "cell", "pbc"):
        o[name] = f[name][:n]
    for name in ("positions", "grad", "numbers"):
        o[name] = f[name][:atoms]
    o.attrs.update(f.attrs); o.attrs["frames"] = n
PY
  line=$("$TORCHANI_PYTHON" -W ignore bench/ani_periodic.py "$work/ani.h5" "$data/scale_300.h5" --radial-cutoff 5.0 \
    --angular-cutoff 3.5 --epochs 1 --batch 32 --value-weight 10 --threads 2)
  echo "TorchANI: $line"
  "$py" - "$work/ani.h5" "$line" <<'PY'
import sys, h5py, re
with h5py.File(sys.argv[1]) as f:
    atoms, frames = f["numbers"].shape[0], f["atoms"].shape[0]
seconds = float(re.search(r"([0-9.]+) s training", sys.argv[2]).group(1))
print(f"TorchANI, {frames} frames, {atoms} atoms: one epoch {seconds:.1f} s, {atoms / seconds / 2:.0f} atoms/s per "
      "core (2 threads)")
PY
else
  echo "TorchANI: skipped (set TORCHANI_PYTHON to an interpreter that imports torchani)"
fi
