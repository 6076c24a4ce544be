#!/usr/bin/env bash
# Peak resident memory per rank of `gradfit_dist eval` on N rows (default 4,000,000) of n = 8, model
# 8-256-256-256-1 softplus float32, under `mpirun -n 2`, against the shard of each rank (x and dV/dx:
# N × 8 × 4 bytes × 2 datasets / 2 ranks). The weights come from a 1-epoch run on 4096 rows of the same shape.
# Usage: bench/bench_eval.sh [N]. Needs a build (scripts/build.sh), h5py (/usr/bin/python3) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-4000000}
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cat >"$work/w.yaml" <<YAML
name: w
data: {target: gaussian_wells, dim: 8, sampling: uniform, samples: 4096}
model: {widths: [256, 256, 256], activation: softplus, dtype: float32}
train: {epochs: 1}
YAML
"$bin" --out "$work/w" "$work/w.yaml" >/dev/null
start=$(date +%s)
/usr/bin/python3 - "$work/pts.h5" "$rows" <<'PY'
import sys, h5py, numpy as np
rows, block = int(sys.argv[2]), 1 << 20
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    x, g = f.create_dataset("x", (rows, 8), "f4"), f.create_dataset("grad", (rows, 8), "f4")
    for i in range(0, rows, block):
        k = min(block, rows - i)
        x[i:i + k] = rng.uniform(-3, 3, (k, 8)).astype("f4")
        g[i:i + k] = 2 * x[i:i + k]
PY
echo "data file: $rows rows, $(du -m "$work/pts.h5" | cut -f1) MB, written in $(( $(date +%s) - start )) s"
start=$(date +%s)
mpirun --oversubscribe -n 2 sh -c 'exec /usr/bin/time -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$work/rss" \
  "$bin" eval "$work/w/results.h5" "$work/pts.h5" --out "$work/pred.h5"
echo "eval: $(( $(date +%s) - start )) s"
shard=$(awk -v n="$rows" 'BEGIN {printf "%.1f", n * 8 * 4 * 2 / 2 / 1e6}')
for r in 0 1; do
  awk -v r=$r -v s="$shard" '{printf "rank %d: peak RSS %.1f MB; shard (x and dV/dx) %s MB; beyond the shard %.1f MB\n", r, $1 * 1024 / 1e6, s, $1 * 1024 / 1e6 - s}' "$work/rss.$r"
done
