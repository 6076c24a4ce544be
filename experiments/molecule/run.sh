#!/usr/bin/env bash
# The worked example of docs/molecules.md, end to end: GFN2-xTB molecular dynamics of ethanol (make_data.py, made
# once), imported with scripts/ase_import.py, a sweep over features, widths and learning rates with test metrics,
# the best run exported, an NVE run with it in ASE (md.py) and the figures (plot.py); then the atom-centred model
# (atom_centered.yaml), exported, with its own NVE run. About 5 minutes on 2 cores the
# first time (the data), 3-4 minutes after. Needs the build (scripts/build.sh), xtb and python3-ase
# (scripts/setup.sh installs them). Results go to ${OUT:-results/molecule}.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-/usr/bin/python3}
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
data=experiments/molecule/data
out=${OUT:-results/molecule}
export OMPI_MCA_rmaps_base_oversubscribe=1
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

[ -f "$data/ethanol_md.extxyz" ] || "$py" experiments/molecule/make_data.py --out "$data"
[ -f "$data/train.h5" ] || "$py" scripts/ase_import.py "$data/ethanol_md.extxyz" --index :2000 --out "$data/train.h5"
[ -f "$data/test.h5" ] || "$py" scripts/ase_import.py "$data/ethanol_md.extxyz" --index 2000: --out "$data/test.h5"
mpirun -n 2 "$bin" --progress lines --out "$out" experiments/molecule/sweep.yaml
"$py" scripts/analyze.py "$out/results.h5" --no-plots
"$bin" export "$out/results.h5" --run best --out "$out/ethanol.pt"
"$py" experiments/molecule/md.py "$out/ethanol.pt" "$data/train.h5" --steps 400 --dt 0.5 --temperature 300 \
  --out "$out"
"$py" experiments/molecule/plot.py "$out/ethanol.pt" "$data/test.h5" "$out/nve.csv" --out "$out"
# The atom-centred model (atom_centered.yaml: per-element networks, forces and energies), exported, and its own
# 200 fs of NVE in ASE (the exported module takes any molecule of its elements).
mpirun -n 2 "$bin" --progress lines --out "$out/ani" experiments/molecule/atom_centered.yaml
"$bin" export "$out/ani/results.h5" --out "$out/ani/ethanol_ani.pt"
"$py" experiments/molecule/md.py "$out/ani/ethanol_ani.pt" "$data/train.h5" --steps 400 --dt 0.5 --temperature 300 \
  --out "$out/ani"
