#!/usr/bin/env bash
# A pruned sweep beside the same sweep trained in full, in one invocation: experiments/asha_sweep.yaml (54 runs)
# with ASHA (its own sweep.prune), ASHA async, ASHA with every run alone (ensemble_size 1), median pruning, and
# without pruning; wall time, epochs trained, and the best run by the sweep's definition (lowest best validation
# loss of a done run). The deterministic pruned sweeps are also replayed against the full one
# (tests/cli/check_pruning.py). Usage:
#   bench/bench_prune.sh [--ranks R]            (default 2: two groups of one rank)
# Environment: GRADFIT_BIN (default build/src/gradfit_dist), PYTHON (an interpreter with h5py; default: python3,
# else /usr/bin/python3). Writes under a temporary folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GRADFIT_BIN:-build/src/gradfit_dist}
ranks=2
[ "${1:-}" = --ranks ] && ranks=$2
. bench/lib.sh  # $py, $work
sweep=experiments/asha_sweep.yaml
sed '/^  prune:/d' "$sweep" >"$work/full.yaml"
sed 's/^  prune:.*/  prune: {method: median, min_epochs: 10}/' "$sweep" >"$work/median.yaml"
sed 's/^  prune: {\(.*\)}/  prune: {\1, async: true}/' "$sweep" >"$work/async.yaml"
sed 's/^ranks_per_run: 1/ranks_per_run: 1\nensemble_size: 1/' "$sweep" >"$work/alone.yaml"
grep -q 'async: true' "$work/async.yaml" && grep -q 'ensemble_size: 1' "$work/alone.yaml"

train() {  # name, sweep file: prints "seconds"
  local start end
  start=$(date +%s%N)
  mpirun --oversubscribe -n "$ranks" "$bin" --progress lines --out "$work/$1" "$2" >"$work/$1.log" 2>&1 ||
    { cat "$work/$1.log" >&2; exit 1; }
  end=$(date +%s%N)
  echo "$(((end - start) / 1000000))e-3"
}
declare -A seconds
names=(full asha asha_async asha_alone median)
for name in "${names[@]}"; do
  case $name in
    full) file=$work/full.yaml ;; asha) file=$sweep ;; asha_async) file=$work/async.yaml ;;
    asha_alone) file=$work/alone.yaml ;; median) file=$work/median.yaml ;;
  esac
  seconds[$name]=$(train "$name" "$file")
done

"$py" - "$work" "${names[@]}" -- "${seconds[full]}" "${seconds[asha]}" "${seconds[asha_async]}" \
  "${seconds[asha_alone]}" "${seconds[median]}" <<'PY'
import sys, h5py, numpy as np
work, rest = sys.argv[1], sys.argv[2:]
names = rest[:rest.index("--")]
times = dict(zip(names, map(float, rest[rest.index("--") + 1:])))
def best(name):
    s = h5py.File(f"{work}/{name}/results.h5", "r")["summary"][:]
    status = np.array([v.decode() for v in s["status"]])
    done = (status == "done") | (status == "early_stopped")
    i = int(np.argmin(np.where(done, s["best_val_loss"], np.inf)))
    return s["name"][i].decode(), float(s["best_val_loss"][i]), int(s["epochs_run"].sum()), int((status == "pruned").sum())
full = best("full")
print(f"{'sweep':<11} {'wall_s':>7} {'epochs':>7} {'epochs%':>8} {'epochs/s':>8} {'pruned':>6} {'best_val_loss':>14} "
      f"{'vs_full':>8}  best run")
for name in names:
    run, loss, epochs, pruned = best(name)
    print(f"{name:<11} {times[name]:7.1f} {epochs:7d} {100 * epochs / full[2]:8.1f} {epochs / times[name]:8.0f} "
          f"{pruned:6d} {loss:14.4e} {loss / full[1]:8.3f}  {run}")
PY
"$py" tests/cli/check_pruning.py "$work/asha/results.h5" "$work/full/results.h5" --method asha --min-epochs 10 \
  --rtol 1e-4
"$py" tests/cli/check_pruning.py "$work/median/results.h5" "$work/full/results.h5" --method median --min-epochs 10 \
  --rtol 1e-4
