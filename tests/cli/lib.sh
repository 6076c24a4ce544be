# The helpers of the cli cases (tests/cli/cases/*.sh): running the command, expectations on its exit code and
# output, and the sweeps and data files several cases share. Sourced by cli_test.sh, which sets $work.
fail() { echo "FAIL: $*"; exit 1; }
# run CMD...: runs it, keeping stdout in $work/out, stderr in $work/err and the exit code in $rc.
run() { "$@" </dev/null >"$work/out" 2>"$work/err"; rc=$?; cat "$work/out" "$work/err"; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "exit code $rc, expected $1"; }
expect_failure() { [ "$rc" -ne 0 ] || fail "exit code 0, expected a failure"; }
expect_in() { grep -Eq -- "$2" "$work/$1" || fail "$1 does not match: $2"; }
mpi() { local n=$1; shift; "$MPIEXEC" $MPIEXEC_FLAGS -n "$n" "$@"; }
# A 4-run sweep on two groups of one rank, float64, a checkpoint every epoch.
write_resume_sweep() {
  cat >"$1" <<YAML
name: resume
ranks_per_run: 1
data: {target: gaussian_wells, dim: 3, sampling: uniform, samples: 8000, well_width: 2.0}
model: {widths: [32, 32], activation: softplus, dtype: float64}
train: {epochs: 100, batch_size: 1000, val_fraction: 0.25}
checkpoint: {every_epochs: 1, every_seconds: 0}
sweep:
  grid: {optimizer.lr: [0.01, 0.003]}
  repeats: 2
YAML
}
# A 12-run sweep pruned by $2 (a sweep.prune mapping; empty: not pruned), on groups of one rank, float64, with
# validation and a checkpoint every epoch: rungs at epochs 4 and 12 of 36 for asha with min_epochs 4.
write_prune_sweep() {
  cat >"$1" <<YAML
name: prune
ranks_per_run: 1
data: {target: rosenbrock, dim: 3, sampling: uniform, samples: 600, low: -1.5, high: 1.5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
train: {epochs: 36, val_fraction: 0.2, seed: 3}
checkpoint: {every_epochs: 1, every_seconds: 0}
sweep:
  grid:
    optimizer.lr: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    model.activation: [tanh, softplus]
YAML
  [ -z "${2:-}" ] || echo "  prune: $2" >>"$1"
}
# A tiny data file for `target: file`: 64 points in 2-D and the gradient of x'x there; with a row number as $2,
# that row's gradient holds a NaN.
write_data_file() {
  "$PYTHON" - "$1" "${2:-}" <<'PY' || fail "cannot write $1"
import sys, h5py, numpy as np
x = np.random.default_rng(1).uniform(-1, 1, (64, 2))
grad = 2 * x
if sys.argv[2]:
    grad[int(sys.argv[2]), 1] = np.nan
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, grad
PY
}
# A sweep of 8 runs over optimizer.lr (one job each), groups of $2 ranks, $3 epochs.
write_lr_sweep() {
  cat >"$1" <<YAML
name: lr
ranks_per_run: $2
ensemble_size: 1
data: {target: quadratic, P: [[2, 0.5], [0.5, 1]]}
model: {widths: [8, 8], activation: softplus, dtype: float64}
train: {epochs: $3}
sweep:
  grid: {optimizer.lr: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]}
YAML
}
# expect_best_run RESULTS METRIC: analyze.py's output names as best the run the rule gives, computed here from
# the runs' attributes: among runs done or early_stopped, the lowest best_val_loss when some run has a finite one,
# else the lowest final_rel_grad_error (NaN last; a tie to the first by name); METRIC is the one that rule uses.
expect_best_run() {
  local best
  best=$("$PYTHON" - "$1" <<'PY'
import math, sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    runs = {name: dict(group.attrs) for name, group in f["runs"].items()}
has_val = any(math.isfinite(a.get("best_val_loss", math.nan)) for a in runs.values())
metric = "best_val_loss" if has_val else "final_rel_grad_error"
def key(name):
    value = runs[name].get(metric, math.nan)
    return (runs[name]["status"] not in ("done", "early_stopped"), value if math.isfinite(value) else math.inf, name)
best = min(runs, key=key)
print(best, metric, runs[best]["status"])
PY
) || fail "cannot compute the best run of $1"
  echo "expected best run (name metric status): $best"
  set -- "$1" "$2" $best
  [ "$4" = "$2" ] || fail "the rule ranks $1 by $4, expected $2"
  [ "$5" = done ] || [ "$5" = early_stopped ] || fail "the expected best run has status $5"
  grep -Fq "best run: $3 (id " "$work/out" || fail "the best run line does not name $3"
  expect_in out "^best run: .*: $2 = "
}
# expect_plots DIR NAME...: DIR/NAME.png is a PNG and analyze.py said it wrote it, for each NAME.
expect_plots() {
  local dir=$1 png
  shift
  for png in "$@"; do
    [ "$(head -c 4 "$dir/$png.png" 2>/dev/null | tail -c 3)" = "PNG" ] || fail "$png.png is not a PNG"
    grep -Fqx "wrote $dir/$png.png" "$work/out" || fail "analyze.py did not print that it wrote $png.png"
  done
}
# timed_run CMD...: run, with the seconds it took in $elapsed; a hang ends at 60 s (exit code 124).
timed_run() {
  local start
  start=$(date +%s.%N)
  run timeout 60 "$@"
  elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
}
# The job ended (no hang: timed_run's 60 s) with exit code 1 and exactly one error line, which matches $1 (an ERE).
# Its seconds are printed, not asserted: a loaded machine is slow, not wrong.
expect_one_error() {
  local line
  line=$(grep 'gradfit_dist: error' "$work/err")
  echo "RESULT $label: exit code $rc in $elapsed s: $line"
  [ "$rc" -ne 124 ] || fail "$label: the job hung until timeout killed it"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "$label: expected exactly one error line"
  expect_in err "$1"
}
# After a job that a group's failure ended (output folder $1, the failed run's name $2): results.h5 holds every
# run whose results file was written (runs that finished, and runs stopped by the failure, "interrupted"); an
# interrupted run keeps its checkpoint, a finished one has none; the failed run has no results. Prints the runs.
check_after_group_failure() {
  echo "$label: the failed run started on $(grep -Eo " $2 \(group [0-9]+" "$work/out" | grep -Eo 'group [0-9]+')"
  "$PYTHON" - "$1" "$2" <<'PY' || fail "$label: results after the failure"
import os, sys, h5py
out, failed = sys.argv[1], sys.argv[2]
def runs_of(path):
    with h5py.File(path, "r") as f:
        return {name: (f["runs"][name].attrs["id"], f["runs"][name].attrs["status"]) for name in f["runs"]}
merged = runs_of(os.path.join(out, "results.h5"))
written = {}
for entry in os.listdir(os.path.join(out, "runs")):
    path = os.path.join(out, "runs", entry)
    if entry.endswith(".h5") and os.path.isfile(path):
        written.update(runs_of(path))
assert merged == written, f"results.h5 {merged} != run files {written}"
assert failed not in merged, f"the failed run {failed} has results"
checkpoints = {e[:-3] for e in os.listdir(os.path.join(out, "checkpoints")) if e.endswith(".h5")}
for name, (run_id, status) in merged.items():
    assert status in ("done", "interrupted"), (name, status)
    assert (run_id in checkpoints) == (status == "interrupted"), (name, status, "checkpoint" if run_id in checkpoints else "none")
print("after the failure:", ", ".join(f"{n} {s}" for n, (_, s) in sorted(merged.items())) or "no run written",
      f"({len(checkpoints)} checkpoints)")
PY
}

# fault_job's fault GRADFIT_FAULT_MODE=$1 in the group training the second run of a 4-run sweep, under -n 2 and
# -n 4 with ranks_per_run 1 and 2: one error line matching $2, and the output folder as a group failure leaves it.
group_fault() {
  local mode=$1 pattern=$2
  for n in 2 4; do
    for k in 1 2; do
      label="n=$n ranks_per_run=$k"
      write_lr_sweep "$work/s$n$k.yaml" $k 300
      timed_run env GRADFIT_FAULT_MODE="$mode" "$MPIEXEC" $MPIEXEC_FLAGS -n $n "$FAULT_BIN" \
        "$work/s$n$k.yaml" "$work/r$n$k"
      expect_one_error "$pattern"
      check_after_group_failure "$work/r$n$k" "lr=0.03"
    done
  done
}
# Waits up to 30 s for a file matching $2 in folder $1.
wait_for_file() {
  for _ in $(seq 300); do compgen -G "$1/$2" >/dev/null && return 0; sleep 0.1; done
  return 1
}
# The sweep in $1 must equal the same sweep run without interruption: histories and weights bit for bit.
# Starts the sweep file $2 (by default the resume sweep, write_resume_sweep, into $work/s.yaml) on two ranks into
# $1, and SIGTERMs its ranks once its first checkpoint is there; its output in $work/out and $work/err, its exit
# code in $rc.
stop_at_first_checkpoint() {
  local sweep=${2:-$work/s.yaml}
  [ -n "${2:-}" ] || write_resume_sweep "$sweep"
  mpi 2 "$GRADFIT_BIN" --progress lines --out "$1" "$sweep" </dev/null >"$work/out" 2>"$work/err" &
  local launcher=$!
  wait_for_file "$1/checkpoints" '*.h5' || fail "no checkpoint appeared"
  pkill -TERM -f "^$GRADFIT_BIN .*--out $1 " || fail "no rank to signal"
  wait "$launcher"; rc=$?
}
# $2 = any_ensembles: runs may have trained alone that the uninterrupted sweep trained in ensembles (the numbers
# are the same).
compare_to_uninterrupted() {
  mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/reference" "$work/s.yaml" </dev/null >/dev/null 2>&1 ||
    fail "the reference sweep failed"
  "$PYTHON" - "$work/reference/results.h5" "$1/results.h5" "${2:-}" <<'PY' || fail "results differ from the uninterrupted sweep"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
any_ensembles = sys.argv[3] == "any_ensembles"
assert sorted(a["runs"]) == sorted(b["runs"]), "different runs"
for name in a["runs"]:
    ga, gb = a["runs"][name], b["runs"][name]
    assert gb.attrs["status"] == "done", (name, gb.attrs["status"])
    for k in ["epoch", "train_loss", "rel_grad_error", "val_loss", "grad_norm", "lr"]:
        assert np.array_equal(ga[k][:], gb[k][:], equal_nan=True), (name, k)
    for group in ["model", "model_last"]:  # the best validation epoch's weights, and the last ones
        for p in ga[group]:
            assert np.array_equal(ga[group][p][:], gb[group][p][:]), (name, group, p)
    for k in ["best_epoch", "final_loss", "final_rel_grad_error", "final_val_loss"] + ([] if any_ensembles else ["ensemble"]):
        assert ga.attrs[k] == gb.attrs[k], (name, k)
sizes = sorted(int(g.attrs["ensemble"]) for g in a["runs"].values())
assert max(sizes) > 1, "the sweep trained no ensemble"
print(f"{len(a['runs'])} runs (ensembles: {sizes}): histories, best and last weights, final metrics identical "
      "to the uninterrupted sweep")
PY
}
# stop_and_resume SWEEP: SIGTERM after SWEEP's first checkpoint (exit code 75), the same command again (exit code
# 0, resuming from checkpoints), and the results equal an uninterrupted sweep's bit for bit (compare_to_uninterrupted).
stop_and_resume() {
  stop_at_first_checkpoint "$work/r" "$1"
  cat "$work/out" "$work/err"
  expect_rc 75
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$1"
  expect_rc 0
  expect_in out "continuing in .*: [0-9]+ runs? already finished, [1-9][0-9]* to resume from checkpoints"
  compare_to_uninterrupted "$work/r"
}

# A sweep of two small runs (2-16-16-1 softplus, 50 epochs), float64 and float32, trained into $1; then
# $1/pts.h5: 2000 new points with grad and value of the same target, and $1/nograd.h5: the points alone.
train_for_eval() {
  cat >"$work/fit.yaml" <<YAML
name: fit
data: {target: gaussian_wells, dim: 2, sampling: uniform, samples: 400, well_width: 1.5}
model: {widths: [16, 16], activation: softplus}
optimizer: {lr: 0.01}
train: {epochs: 50}
sweep:
  grid: {model.dtype: [float64, float32]}
YAML
  run mpi 2 "$GRADFIT_BIN" --out "$1" "$work/fit.yaml"
  expect_rc 0
  "$PYTHON" - "$1" <<'PY' || fail "cannot write the points"
import sys, h5py, numpy as np
rng = np.random.default_rng(7)
x = rng.uniform(-3, 3, (2000, 2))
with h5py.File(sys.argv[1] + "/pts.h5", "w") as f:
    f["x"], f["grad"], f["value"] = x, 2 * x, (x * x).sum(1)
with h5py.File(sys.argv[1] + "/nograd.h5", "w") as f:
    f["x"] = x
with h5py.File(sys.argv[1] + "/results.h5") as f:  # the top-level key `denormals`, by default
    assert all(g.attrs["denormals"] == "flush" for g in f["runs"].values()), "attribute 'denormals' is not 'flush'"
PY
}
# check_against_torch RESULTS RUN PRED DATA TOL: PRED's value and grad equal an independent PyTorch evaluation of
# RUN's weights (torch.nn rebuilt from /runs/RUN/model/*, in the run's dtype) at DATA's x, to TOL relative.
check_against_torch() {
  "$PYTHON" - "$@" <<'PY' || fail "eval differs from PyTorch"
import sys, h5py, numpy as np, torch
results, name, pred, data, tol = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
with h5py.File(results) as f:
    g = f["runs"][name]
    dname = g.attrs["dtype"]
    dtype = {"float64": torch.float64, "float32": torch.float32}[dname]
    widths, n = list(g.attrs["widths"]), int(g.attrs["dim"])
    layers, sizes = [], [n] + widths
    for i in range(len(widths)):
        layers += [torch.nn.Linear(sizes[i], sizes[i + 1]), torch.nn.Softplus()]
    layers.append(torch.nn.Linear(sizes[-1], 1))
    net = torch.nn.Sequential(*layers).to(dtype)
    with torch.no_grad():
        for i, layer in enumerate(l for l in net if isinstance(l, torch.nn.Linear)):
            layer.weight.copy_(torch.from_numpy(g["model"][f"layers.{i}.weight"][:]))
            layer.bias.copy_(torch.from_numpy(g["model"][f"layers.{i}.bias"][:]))
with h5py.File(data) as f:
    x = torch.from_numpy(f["x"][:]).to(dtype).requires_grad_(True)
v = net(x).squeeze(1)
(grad,) = torch.autograd.grad(v.sum(), x)
with h5py.File(pred) as f:
    pv, pg = f["value"][:], f["grad"][:]
    assert pv.dtype == np.dtype("f8" if dtype == torch.float64 else "f4"), pv.dtype
ref_v, ref_g = v.detach().double().numpy(), grad.double().numpy()
dv = np.abs(pv - ref_v).max() / np.abs(ref_v).max()
dg = np.abs(pg - ref_g).max() / np.abs(ref_g).max()
print(f"eval vs PyTorch ({dname}): value {dv:.3e}, grad {dg:.3e} (max abs diff / max abs, tolerance {tol:g})")
assert pv.shape == ref_v.shape and pg.shape == ref_g.shape
assert dv <= tol and dg <= tol
PY
}
# A data file $1 in large units: 400 points x uniform in [0, 1000]^2, V = 1e7 (sin(3u1) cos(2u2) + u1 u2) with
# u = x / 1000, so S = dV/dx is of order 1e4, with values.
write_large_units_file() {
  "$PYTHON" - "$1" <<'PY' || fail "cannot write $1"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(0, 1000, (400, 2))
u = x / 1000
v = 1e7 * (np.sin(3 * u[:, 0]) * np.cos(2 * u[:, 1]) + u[:, 0] * u[:, 1])
grad = 1e4 * np.stack([3 * np.cos(3 * u[:, 0]) * np.cos(2 * u[:, 1]) + u[:, 1],
                       -2 * np.sin(3 * u[:, 0]) * np.sin(2 * u[:, 1]) + u[:, 0]], axis=1)
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"], f["value"] = x, grad, v
PY
}
# A single run $1 (the YAML file; name std) on the data file $2 with data.standardize $3, float64, and $4 more
# train keys.
write_std_run() {
  cat >"$1" <<YAML
name: std
data: {target: file, path: $2, standardize: $3}
model: {widths: [24, 24], activation: softplus, dtype: float64}
optimizer: {lr: 0.01}
train: {epochs: ${5:-300}, seed: 2${4:-}}
YAML
}
