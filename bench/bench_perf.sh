#!/usr/bin/env bash
# gradfit_dist beside the PyTorch (Python) program a user would write (bench/reference.py), in one invocation, with
# the same ranks and threads. Usage:
#   bench/bench_perf.sh [--ranks R] [--threads T] [--device cpu|cuda] [SECTION...]
# SECTION: large (epoch time and FLOP rate at N=32768, against a measured sgemm peak), memory (peak resident memory
# per rank as N grows), sweep (36 small runs: wall time and final losses); default: all three.
# --device cuda: sgemm and both tools on the GPU, one rank, no mpirun binding (memory is CPU-only and skipped).
# Environment: GRADFIT_BIN (default build/src/gradfit_dist), PYTHON (default python3; /usr/bin/python3 is taken when
# only it imports torch), MEMORY_SAMPLES (default "131072 262144 524288 1048576"), LARGE_SAMPLES (default 32768).
# Needs a build (scripts/build.sh), PyTorch for Python (python3-torch), h5py and /usr/bin/time (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
ranks=2 threads=1 device=cpu sections=()
while [ $# -gt 0 ]; do
  case $1 in
    --ranks) ranks=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    large|memory|sweep) sections+=("$1"); shift ;;
    *) echo "usage: $0 [--ranks R] [--threads T] [--device cpu|cuda] [large] [memory] [sweep]" >&2; exit 2 ;;
  esac
done
[ ${#sections[@]} -gt 0 ] || sections=(large memory sweep)
[ "$device" = cpu ] || ranks=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=$threads
py=${PYTHON:-python3}
if ! "$py" -c 'import torch, h5py' 2>/dev/null && /usr/bin/python3 -c 'import torch, h5py' 2>/dev/null; then
  py=/usr/bin/python3
fi
"$py" -c 'import torch, h5py' || { echo "bench_perf: $py needs torch and h5py (scripts/setup.sh)" >&2; exit 1; }
have_bin=1 engines=(default)
"$bin" --version >/dev/null 2>&1 || { have_bin=0; echo "bench_perf: $bin does not run; its rows are skipped" >&2; }
# gradfit_dist's training engines, a row each: the values its error for an unknown train.engine lists, if it has any.
if [ $have_bin = 1 ]; then
  probe=$("$bin" --dry-run --set train.engine=none bench/large.yaml 2>&1 || true)
  if [[ $probe == *"is not one of "* ]]; then
    read -ra engines <<<"$(sed -n 's/.*is not one of //p' <<<"$probe" | tr -d ,)"
  fi
fi
out=$(mktemp -d) guard=""
trap '[ -z "$guard" ] || kill -- -"$guard" 2>/dev/null; rm -rf "$out"' EXIT
table=$out/table
row() { printf '%-9s %-9s %-12s %-12s %-12s %-11s %s\n' "$@" >>"$table"; }
note() { echo "bench_perf: $*" >&2; }

# gradfit_dist under mpirun on the CPU (ranks bound to cores, like the reference), alone on the GPU.
gradfit() {
  local n=$1; shift
  if [ "$device" = cpu ]; then mpirun --bind-to core -n "$n" "$bin" --threads "$threads" "$@"
  else "$bin" --threads "$threads" --set device=cuda "$@"; fi
}
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
gflops() { awk -v f="$1" -v t="$2" 'BEGIN {printf "%.1f", f / t / 1e9}'; }
pct() { awk -v f="$1" -v t="$2" -v p="$peak" 'BEGIN {printf "%.1f", 100 * f / t / 1e9 / p}'; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }  # value of key=... in a reference line
epoch_stats() {  # median and min of epoch_seconds after the first epoch, of the one run in a results file
  "$py" - "$1" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as f:
    (run,) = f["runs"].values()
    s = run["epoch_seconds"][1:]
print(f"{np.median(s):.6f} {s.min():.6f}")
EOF
}

# sgemm peak: the best of 10 float32 matrix products with the same threads, times the ranks.
peak1=$("$py" - "$device" "$threads" <<'EOF'
import sys, time, torch
device, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
n = 2048 if device == "cpu" else 8192
a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
best = float("inf")
for i in range(12):
    if device == "cuda": torch.cuda.synchronize()
    t = time.perf_counter(); a @ b
    if device == "cuda": torch.cuda.synchronize()
    if i >= 2: best = min(best, time.perf_counter() - t)
print(f"{2 * n**3 / best / 1e9:.1f}")
EOF
)
peak=$(awk -v p="$peak1" -v r="$ranks" 'BEGIN {printf "%.1f", p * r}')
note "sgemm float32, $threads thread(s): $peak1 GFLOP/s per rank, peak for $ranks rank(s) $peak GFLOP/s"

large() {
  local N=${LARGE_SAMPLES:-32768} e ref ref_med flops
  flops=$((12 * N * (8 * 256 + 256 * 256 + 256 * 256 + 256 * 1)))
  echo "# large: N=$N, 8-256-256-256-1 softplus float32, full batch, 12 epochs (first dropped); ranks=$ranks" \
    "threads=$threads device=$device; $((flops / 1000000)) MFLOP/epoch; sgemm peak $peak GFLOP/s" >>"$table"
  row tool engine epoch_s_med epoch_s_min vs_ref GFLOP/s "%peak"
  ref=$("$py" bench/reference.py large --ranks "$ranks" --threads "$threads" --samples "$N" --device "$device" |
    tail -n 1)
  ref_med=$(field "$ref" epoch_s_median)
  if [ $have_bin = 1 ]; then
    for e in "${engines[@]}"; do
      engine_args=(); [ "$e" = default ] || engine_args=(--set "train.engine=$e")
      gradfit "$ranks" --out "$out/large_$e" --set "data.samples=$N" "${engine_args[@]}" bench/large.yaml \
        >"$out/large_$e.log"
      read -r med min < <(epoch_stats "$out/large_$e/results.h5")
      row gradfit "$e" "$med" "$min" "$(div "$med" "$ref_med")" "$(gflops "$flops" "$med")" "$(pct "$flops" "$med")"
    done
  fi
  row reference pytorch "$ref_med" "$(field "$ref" epoch_s_min)" 1.00 "$(gflops "$flops" "$ref_med")" \
    "$(pct "$flops" "$ref_med")"
}

# Runs a command in a process group of its own and ends that group if free memory falls under 1 GiB.
guarded() {
  setsid -w "$@" & guard=$!
  while kill -0 "$guard" 2>/dev/null; do
    if [ "$(awk '/MemAvailable/ {print $2}' /proc/meminfo)" -lt 1048576 ]; then
      note "free memory under 1 GiB: stopping $*"; kill -- -"$guard"; wait "$guard" || true; guard=""; return 1
    fi
    sleep 0.5
  done
  local pid=$guard; guard=""; wait "$pid"
}

memory() {
  if [ "$device" != cpu ]; then note "memory: CPU only, skipped"; return; fi
  [ -x /usr/bin/time ] || { note "memory: needs /usr/bin/time (scripts/setup.sh), skipped"; return; }
  echo "# memory: peak resident MiB per rank (the largest rank), 2 epochs, large problem, ranks=$ranks" \
    "threads=$threads; shard = the rank's x and S, N/R*2*8*4 bytes" >>"$table"
  row tool engine N shard_MiB peak_MiB peak/shard
  local tool e N prev=() mib pred avail shard
  for tool in "${engines[@]/#/gradfit:}" reference:pytorch; do
    e=${tool#*:} tool=${tool%%:*}
    [ "$tool" = reference ] || [ $have_bin = 1 ] || continue
    engine_args=(); [ "$e" = default ] || [ "$tool" = reference ] || engine_args=(--set "train.engine=$e")
    prev=()
    for N in ${MEMORY_SAMPLES:-131072 262144 524288 1048576}; do
      shard=$(awk -v n="$N" -v r="$ranks" 'BEGIN {printf "%.1f", n / r * 64 / 2^20}')
      avail=$(awk '/MemAvailable/ {printf "%d", $2 / 1024}' /proc/meminfo)
      if [ ${#prev[@]} -ge 4 ]; then  # a straight line through the last two points, with 10 % to spare
        pred=$(awk -v n1="${prev[-4]}" -v m1="${prev[-3]}" -v n2="${prev[-2]}" -v m2="${prev[-1]}" -v n="$N" \
          'BEGIN {printf "%d", 1.1 * (m2 + (m2 - m1) / (n2 - n1) * (n - n2))}')
        if [ $((pred * ranks)) -gt $((avail * 9 / 10)) ]; then
          row "$tool" "$e" "$N" "$shard" skipped "" "(predicted $pred MiB/rank x $ranks > 90% of $avail MiB free)"
          continue
        fi
      fi
      rm -f "$out"/rss.*
      if [ "$tool" = gradfit ]; then
        # /usr/bin/time around each rank: its peak resident memory, to rss.<rank>
        # shellcheck disable=SC2016
        guarded mpirun --bind-to core -n "$ranks" \
          sh -c 'exec /usr/bin/time -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$out/rss" "$bin" --threads "$threads" \
          --out "$out/mem_${e}_$N" --set "data.samples=$N" --set train.epochs=2 "${engine_args[@]}" bench/large.yaml \
          >"$out/mem.log" || { row "$tool" "$e" "$N" "$shard" failed; continue; }
        mib=$(cat "$out"/rss.* | awk '$1 > m {m = $1} END {printf "%d", m / 1024}')
      else
        guarded "$py" bench/reference.py large --ranks "$ranks" --threads "$threads" --samples "$N" --epochs 2 \
          >"$out/mem.log" || { row "$tool" "$e" "$N" "$shard" failed; continue; }
        mib=$(field "$(tail -n 1 "$out/mem.log")" peak_mib_per_rank | tr ',' '\n' | sort -n | tail -n 1)
      fi
      prev+=("$N" "$mib")
      row "$tool" "$e" "$N" "$shard" "$mib" "$(div "$mib" "$shard")"
    done
  done
}

sweep() {
  local t0 wall ref diffs
  echo "# sweep: bench/seed_sweep36.yaml, 36 runs x 1000 epochs; gradfit_dist with ensembles (ensemble_size: 0," \
    "chosen by size) and without (ensemble_size: 1, each run alone), one group per rank; the reference one run after" \
    "another in one process; threads=$threads device=$device" >>"$table"
  row tool runs_as ranks wall_s vs_ref
  "$py" bench/reference.py seed-sweep --threads "$threads" --device "$device" --csv "$out/ref.csv" >"$out/ref.log"
  ref=$(field "$(tail -n 1 "$out/ref.log")" total_s)
  if [ $have_bin = 1 ]; then
    # name ranks ensemble_size: ensembles on all ranks, each run alone on all ranks, each run alone on one rank
    # (one run after another: the final losses must agree with the ensembles')
    local cases=("sweep $ranks 0" "alone $ranks 1")
    [ "$ranks" -gt 1 ] && cases+=("alone1 1 1")
    for c in "${cases[@]}"; do
      read -r name n size <<<"$c"
      t0=$(date +%s.%N)
      gradfit "$n" --progress lines --out "$out/$name" --set ensemble_size="$size" bench/seed_sweep36.yaml \
        >"$out/$name.log"
      wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
      row gradfit "$([ "$size" = 0 ] && echo ensembles || echo alone)" "$n" "$wall" "$(div "$wall" "$ref")"
    done
  fi
  row reference alone 1 "$ref" 1.00
  [ $have_bin = 1 ] || return 0
  local alone=$out/alone1/results.h5
  [ -e "$alone" ] || alone=$out/alone/results.h5
  diffs=$(RANKS=$ranks "$py" - "$out/sweep/results.h5" "$alone" "$out/ref.csv" <<'EOF'
import os, sys, h5py, numpy as np, pandas as pd
def losses(path):
    with h5py.File(path) as f:
        s = pd.DataFrame(f["summary"][:])
    return s.set_index(s["name"].str.decode("utf-8"))["final_loss"]
def worst(a, b):
    a, b = a.align(b, join="inner")
    rel = np.abs(a - b) / np.abs(b)
    return f"{len(a)} runs, |a-b|/|b| median {np.median(rel):.3g}, worst {rel.max():.3g}"
g = losses(sys.argv[1])
with h5py.File(sys.argv[1]) as f:
    sizes = sorted({(int(r.attrs["ensemble"]), r.attrs["architecture"], r.attrs["activation"]) for r in f["runs"].values()})
print("ensembles (runs, architecture, activation): " + ", ".join(f"{n} {a} {act}" for n, a, act in sizes))
one = losses(sys.argv[2])
print(f"final loss, gradfit ensembles on {os.environ['RANKS']} rank(s) vs each run alone, one after another: "
      f"{worst(g, one)}")
r = pd.read_csv(sys.argv[3])
r.index = [f"activation={a},widths={w},lr={l:g},repeat={s}" for a, w, l, s in r.iloc[:, :4].itertuples(index=False)]
print(f"final loss, gradfit vs reference (same initial weights, other rounding): {worst(g, r['final_loss'])}")
EOF
)
  echo "$diffs" >>"$table"
}

for s in "${sections[@]}"; do
  start=$SECONDS
  note "$s ..."
  $s
  note "$s took $((SECONDS - start)) s"
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "# sgemm float32 $threads thread(s): $peak1 GFLOP/s per rank; $(getconf _NPROCESSORS_ONLN) cores, $cpu"
cat "$table"
