#!/usr/bin/env bash
# Epoch time and the gradient allreduce's share of it, on 1 and on 2 ranks with one intra-op thread each, for
# bench/data_parallel.yaml. Usage: bench/bench_data_parallel.sh [RANKS...]   (default: 1 2)
# Needs a build (scripts/build.sh) and h5dump. Runs the configurations one after the other in one invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
ranks_list=("$@")
[ ${#ranks_list[@]} -gt 0 ] || ranks_list=(1 2)
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

attr() { h5dump -m %.6f -a "/runs/data_parallel/$2" "$1" | awk '/\(0\):/ {print $2}'; }

printf '%-6s %-8s %-16s %-16s %-14s %-10s\n' ranks threads "epoch_s(median)" "epoch_s(min)" allreduce_s allreduce%
for n in "${ranks_list[@]}"; do
  mpirun --bind-to core -n "$n" "$bin" --threads 1 --out "$out/n$n" bench/data_parallel.yaml >"$out/log$n"
  file="$out/n$n/results.h5"
  # Epochs 2.. (the first warms up allocators and caches).
  h5dump -m %.6f -d /runs/data_parallel/epoch_seconds -y -w 1 "$file" | grep -E '^ *[0-9.]+,?$' | tr -d ' ,' |
    tail -n +2 | sort -g >"$out/epochs$n"
  median=$(awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}' "$out/epochs$n")
  fastest=$(head -n 1 "$out/epochs$n")
  wall=$(attr "$file" wall_seconds)
  allreduce=$(attr "$file" allreduce_seconds)
  share=$(awk -v a="$allreduce" -v w="$wall" 'BEGIN {printf "%.1f", 100 * a / w}')
  printf '%-6s %-8s %-16s %-16s %-14s %-10s\n' "$n" 1 "$median" "$fastest" "$allreduce" "$share"
done
