#!/usr/bin/env bash
# model.features atom_centered:
#  1. The descriptor against TorchANI's AEVComputer, same parameters, float64 (bench/aev_vs_torchani.py; needs
#     TORCHANI_PYTHON, an interpreter that imports torchani: see BENCHMARKS.md; skipped without it).
#  2. Cost of an epoch: ethanol (ASE's geometry, every atom moved by N(0, 0.1 Å); the cost does not depend on the
#     gradients, random here), N = 4096 frames, widths 64-64 SiLU, float32, full batch, 1 rank, 2 threads: the median
#     of 10 epochs for inverse_distances and atom_centered (ANI-1x's parameters: 240 numbers per atom for H, C, O),
#     each on the analytic and the autograd engine, alternating them twice.
# Usage: bench/bench_atom_centered.sh
# Environment: GRADFIT_BIN (default build/src/gradfit_dist), BENCH_DESCRIPTOR (default build/bench_descriptor,
# built when missing), PYTHON (an interpreter with h5py and ase; default: python3, else /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
tool=${BENCH_DESCRIPTOR:-build/bench_descriptor}
. bench/lib.sh  # $py, $work
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F)"

# 1. The descriptor against TorchANI.
if [ -n "${TORCHANI_PYTHON:-}" ]; then
  [ -x "$tool" ] || cmake --build build --target bench_descriptor >/dev/null
  "$TORCHANI_PYTHON" -W ignore bench/aev_vs_torchani.py "$tool" "$work"
else
  echo "descriptor against TorchANI: skipped (set TORCHANI_PYTHON to an interpreter that imports torchani)"
fi

# 2. Cost of an epoch.
"$py" - "$work/ethanol.h5" <<'PY'
import sys, h5py, numpy as np
from ase.build import molecule
atoms = molecule("CH3CH2OH")
rng = np.random.default_rng(0)
x = atoms.positions[None] + 0.1 * rng.normal(size=(4096, len(atoms), 3))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x.reshape(4096, -1), rng.normal(size=(4096, 3 * len(atoms)))
    f.attrs["numbers"] = atoms.numbers
PY
for round in 1 2; do
  for setting in {inverse_distances,atom_centered}:{analytic,autograd}; do
    features=${setting%:*} engine=${setting#*:}
    printf 'name: cost\ndata: {target: file, path: %s}\nmodel: {widths: [64, 64], activation: silu, features: %s}\ntrain: {epochs: 10, engine: %s}\n' \
      "$work/ethanol.h5" "$features" "$engine" >"$work/cost.yaml"
    mpirun -n 1 "$bin" --threads 2 --fresh --out "$work/cost" "$work/cost.yaml" >/dev/null 2>&1
    "$py" - "$work/cost/results.h5" "$features" "$engine" "$round" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as f:
    run = f["runs"]["cost"]
    seconds, architecture = run["epoch_seconds"][:], run.attrs["architecture"]
architecture = architecture.decode() if isinstance(architecture, bytes) else architecture
print(f"cost, round {sys.argv[4]}: {architecture}, {sys.argv[3]} engine: median epoch "
      f"{np.median(seconds[1:]) * 1000:.0f} ms (N = 4096 ethanol frames, float32, 1 rank, 2 threads)")
PY
  done
done
