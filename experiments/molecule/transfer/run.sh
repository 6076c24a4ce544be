#!/usr/bin/env bash
# Transfer to larger molecules (docs/molecules.md, "Transfer to larger molecules"; README.md beside this script):
# the atom-centred model trained on GFN2-xTB MD of eight small C/H/O molecules at once (the frames layout), tested
# on their later, held-out frames and on three 12-atom molecules never in training: 1-propanol, 2-propanol and
# methyl ethyl ether. The data (make_data.py, made once, kept in $DATA) takes 2.5-4.5 minutes on 2 cores, the
# training ~75 s, each evaluation ~1 s. Needs the build (scripts/build.sh), xtb and python3-ase (scripts/setup.sh
# installs them). Results go to ${OUT:-results/molecule_transfer}; the last lines (summary.txt) compare the errors.
set -euo pipefail
cd "$(dirname "$0")/../../.."
py=${PYTHON:-/usr/bin/python3}
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
here=experiments/molecule/transfer
data=${DATA:-$here/data}
out=${OUT:-results/molecule_transfer}
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

small=(CH3OH CH3CH2OH CH3CHO HCOOH CH3OCH3 CH3COOH C3H8 CH3COCH3)   # ASE G2 names: methanol ... acetone
large=(1-propanol C2H6CHOH CH3CH2OCH3)                              # 1-propanol, 2-propanol, methyl ethyl ether
tests=(test_propanol test_large test_ether)                         # their data files, in that order
# Each molecule's own NVT MD at 500 K, a frame every 20 fs: 400 frames (8 ps) of each small molecule, 300 (6 ps) of
# each larger one. Existing files are kept.
"$py" $here/make_data.py --molecules "$(IFS=,; echo "${small[*]}")" --frames 400 --out "$data"
"$py" $here/make_data.py --molecules "$(IFS=,; echo "${large[*]}")" --frames 300 --out "$data"
files=()
for m in "${small[@]}"; do files+=("$data/${m}_md.extxyz"); done
# Per small molecule, frames 0-299 (the first 6 ps) train, frames 300-399 (the last 2 ps) are the held-out test.
import_once() { [ -f "${*: -1}" ] || "$py" scripts/ase_import.py --layout frames "$@"; }
import_once "${files[@]}" --index :300 --out "$data/train.h5"
import_once "${files[@]}" --index 300: --out "$data/test_small.h5"
for i in 0 1 2; do import_once "$data/${large[i]}_md.extxyz" --out "$data/${tests[i]}.h5"; done
mkdir -p "$out"
# The yaml's data paths are relative to it; a $DATA elsewhere is passed with --set.
set_data=()
[ "$data" = "$here/data" ] || set_data=(--set "data.path=$(realpath "$data/train.h5")" \
  --set "data.test_path=$(realpath "$data/test_small.h5")")
start=$(date +%s)
mpirun -n 2 "$bin" --progress lines --out "$out" "${set_data[@]}" $here/transfer.yaml
echo "training: $(( $(date +%s) - start )) s" > "$out/timing.txt"
for t in test_small "${tests[@]}"; do
  "$bin" eval "$out/results.h5" "$data/$t.h5" --run best | tee "$out/eval_$t.txt"
done
# The comparison: relative force error ||dE/dx - S|| / ||S|| (eval's relative gradient error), force MAE (eV/Å,
# the mean over the 3 components) and the ratio to the held-out frames' error (the goal: <= 2x).
summary() {
  awk -v name="$2" -v ref="$3" '/relative gradient error/ {rel = $NF}
    /dV\/dx MAE per component/ {gsub(/[][,]/, " "); mae = ($(NF-2) + $(NF-1) + $NF) / 3}
    END {printf "%-42s relative force error %6.2f %%, MAE %.4f eV/Å", name, 100 * rel, mae
         if (ref > 0) printf ", %.2fx the held-out error: %s", rel / ref, (rel <= 2 * ref ? "<= 2x" : "> 2x")
         printf "\n"}' "$1"
}
ref=$(awk '/relative gradient error/ {print $NF}' "$out/eval_test_small.txt")
{
  summary "$out/eval_test_small.txt" "held-out frames of the 8 small molecules" 0
  summary "$out/eval_test_propanol.txt" "1-propanol (never in training)" "$ref"
  summary "$out/eval_test_large.txt" "2-propanol (never in training)" "$ref"
  summary "$out/eval_test_ether.txt" "methyl ethyl ether (never in training)" "$ref"
} | tee "$out/summary.txt"
