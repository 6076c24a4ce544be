#!/usr/bin/env bash
# The periodic worked example (README.md beside this script; docs/materials.md): EMT Cu-Ag molecular dynamics in
# periodic cells (make_data.py, made once, ~2.5 min on 2 cores), imported with scripts/ase_import.py --layout frames,
# a sweep of widths and learning rates with test metrics on held-out trajectories (~12 min), the best run evaluated
# on them and exported, 1 ps of NVE with it in ASE (nve.py, ~2 min) and the figures (figures.py). Needs the build
# (scripts/build.sh) and python3-ase (scripts/setup.sh installs it). Results go to ${OUT:-results/materials}.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-/usr/bin/python3}
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
here=experiments/materials
data=$here/data
out=${OUT:-results/materials}
export OMPI_MCA_rmaps_base_oversubscribe=1
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

[ -f "$data/train.extxyz" ] || "$py" $here/make_data.py --out "$data"
[ -f "$data/train.h5" ] || "$py" scripts/ase_import.py "$data/train.extxyz" --layout frames --out "$data/train.h5"
[ -f "$data/test.h5" ] || "$py" scripts/ase_import.py "$data/test.extxyz" --layout frames --out "$data/test.h5"
mpirun -n 2 "$bin" --progress lines --out "$out" $here/sweep.yaml
"$py" scripts/analyze.py "$out/results.h5" --no-plots
rm -f "$out/test_predictions.h5"
mpirun -n 2 "$bin" eval "$out/results.h5" "$data/test.h5" --run best --out "$out/test_predictions.h5"
"$bin" export "$out/results.h5" --run best --out "$out/cuag.pt"
# 1 ps of NVE (1 fs steps) from frame 100 of the test file (a 108-atom cell of a held-out trajectory) at 900 K.
"$py" $here/nve.py "$out/cuag.pt" "$data/test.h5" --frame 100 --steps 1000 --dt 1 --temperature 900 --out "$out"
"$py" $here/figures.py "$out/test_predictions.h5" "$data/test.h5" "$out/nve.csv" --out "$out"
