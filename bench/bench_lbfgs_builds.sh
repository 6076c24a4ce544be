#!/usr/bin/env bash
# What L-BFGS's compensated, block-by-block sums cost (docs/architecture.md, Data parallelism): the same L-BFGS runs
# trained by two builds, side by side, alternating A B A B so that both see the same machine: A, a build before
# compensated sums (plain sums: one pass per chunk, one float allreduce), and B, a build with them. Built-in targets,
# float64, full batch, softplus 64-64, 60 epochs (one iteration each), on 2 ranks (one thread each); prints the median
# training seconds per 100 function evaluations (L-BFGS's evaluations per epoch vary) over the repetitions. Usage:
#   bench/bench_lbfgs_builds.sh OLD_BIN NEW_BIN [--repeats 3]
# Environment: PYTHON (an interpreter with h5py; default: python3, else /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
repeats=3
[ "${3:-}" = --repeats ] && repeats=$4
. bench/lib.sh  # $py, $work

# name: data section, widths
cases=(
  "rosenbrock_2k|{target: rosenbrock, dim: 4, sampling: uniform, samples: 2000, low: -2, high: 2, seed: 1}|64, 64"
  "wells_20k|{target: gaussian_wells, dim: 8, sampling: uniform, samples: 20000, wells: 6, seed: 1}|64, 64"
  "quadratic_200k|{target: quadratic, dim: 2, P: [[2, 0.5], [0.5, 1]], sampling: uniform, samples: 200000, seed: 1}|64, 64"
)
seconds_per_100_evaluations() {  # results file: the seconds, then the evaluations per epoch
  "$py" -c '
import sys, h5py
g = next(iter(h5py.File(sys.argv[1], "r")["runs"].values()))
print(100 * g.attrs["wall_seconds"] / g.attrs["function_evaluations"], g.attrs["function_evaluations"] / 60)' "$1"
}
echo "| problem | N | block rows | evaluations / epoch | s / 100 evaluations, A | B | B / A |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for c in "${cases[@]}"; do
  IFS='|' read -r name data widths <<<"$c"
  printf 'name: %s\ndata: %s\nmodel: {widths: [%s], activation: softplus, dtype: float64}\n' "$name" "$data" \
    "$widths" >"$work/$name.yaml"
  printf 'optimizer: {name: lbfgs, lr: 1, history_size: 20}\ntrain: {epochs: 60, seed: 0}\n' >>"$work/$name.yaml"
  a=() b=()
  for i in $(seq "$repeats"); do
    for which in old new; do
      bin=$old; [ $which = new ] && bin=$new
      mpirun --oversubscribe -n 2 "$bin" --fresh --threads 1 --progress lines --out "$work/$which" \
        "$work/$name.yaml" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
      read -r t per_epoch < <(seconds_per_100_evaluations "$work/$which/results.h5")
      if [ $which = old ]; then a+=("$t"); else b+=("$t"); fi
    done
  done
  "$py" - "$name" "${a[*]}" "${b[*]}" "$per_epoch" <<'PY'
import statistics, sys
name, a, b = sys.argv[1], [float(v) for v in sys.argv[2].split()], [float(v) for v in sys.argv[3].split()]
per_epoch = float(sys.argv[4])
n = {"rosenbrock_2k": 2000, "wells_20k": 20000, "quadratic_200k": 200000}[name]
block = max(min(256, max(1, -(-n // 16))), -(-n // 1024))
ma, mb = statistics.median(a), statistics.median(b)
print(f"| {name} | {n} | {block} | {per_epoch:.2f} | {ma:.3f} | {mb:.3f} | {mb / ma:.2f} |")
PY
done
