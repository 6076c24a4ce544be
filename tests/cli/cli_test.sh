#!/usr/bin/env bash
# End-to-end checks of gradfit_dist. Usage: cli_test.sh CASE (run by ctest from the repository root, with
# GRADFIT_BIN, MPIEXEC, MPIEXEC_FLAGS, H5DUMP and H5IMPORT set).
set -u
case_name=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# OpenMPI's session directories under this case's own folder: two cases starting MPI at once (ctest -j) can race to
# create the shared /tmp/ompi.<host>.<uid>, and the loser fails in MPI_Init ("mkdir ... File exists").
mkdir -p "$work/ompi" && export OMPI_MCA_orte_tmpdir_base="$work/ompi"

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
# The job ended with exit code 1 within 10 s and exactly one error line, which matches $1 (an ERE).
expect_one_error() {
  local line
  line=$(grep 'gradfit_dist: error' "$work/err")
  echo "RESULT $label: exit code $rc in $elapsed s: $line"
  [ "$rc" -ne 124 ] || fail "$label: the job hung until timeout killed it"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "$label: expected exactly one error line"
  expect_in err "$1"
  awk -v t="$elapsed" 'BEGIN {exit !(t <= 10)}' || fail "$label: took $elapsed s"
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
case "$case_name" in
help)
  run "$GRADFIT_BIN" --help
  expect_rc 0
  expect_in out "SWEEP.yaml"
  expect_in out "--out"
  expect_in out "--version" ;;
version)
  run "$GRADFIT_BIN" --version
  expect_rc 0
  expect_in out "^gradfit_dist [0-9]+\.[0-9]+\.[0-9]+ \(" ;;
seed_example)
  # The README's example on two ranks: the loss falls and the history is readable with h5dump.
  run mpi 2 "$GRADFIT_BIN" --out "$work/seed" experiments/seed_quadratic.yaml
  expect_rc 0
  expect_in out "2 ranks"
  expect_in out "^epoch +999 "
  first=$(awk '$1 == "epoch" && $2 == 1 {print $4}' "$work/out")
  last=$(awk '$1 == "epoch" && $2 == 999 {print $4}' "$work/out")
  awk -v f="$first" -v l="$last" 'BEGIN {exit !(l < f / 3)}' || fail "loss went from $first to $last"
  "$H5DUMP" -d /runs/seed_quadratic/train_loss "$work/seed/results.h5" >"$work/dump" || fail "h5dump failed"
  grep -q "SIMPLE { ( 999 ) / ( 999 ) }" "$work/dump" || fail "history is not 999 long"
  [ "$(ls "$work/seed" | tr '\n' ' ')" = "checkpoints outcome results.h5 runs " ] || fail "unexpected files: $(ls "$work/seed")"
  [ "$(cat "$work/seed/outcome")" = complete ] || fail "outcome: $(cat "$work/seed/outcome")"
  [ "$(ls "$work/seed/runs" | wc -l)" -eq 1 ] && [ -z "$(ls "$work/seed/checkpoints")" ] || fail "runs/checkpoints" ;;
warm_start)
  # A 200-epoch full-batch SGD run equals a 100-epoch run continued for 100 epochs with train.init_from, bit for
  # bit (SGD without momentum has no state to lose); the source is part of the run's id and recorded; a source of
  # another architecture is one clear error.
  write_sgd() {  # $1 file, $2 epochs, $3 extra train keys, $4 widths
    cat >"$1" <<YAML
name: sgd
data: {target: gaussian_wells, dim: 2, sampling: uniform, samples: 300, well_width: 1.5}
model: {widths: ${4:-[12, 12]}, activation: tanh, dtype: float64}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: $2, seed: 4${3:-}}
YAML
  }
  write_sgd "$work/long.yaml" 200
  write_sgd "$work/half.yaml" 100
  write_sgd "$work/more.yaml" 100 ", init_from: half/results.h5"
  run mpi 2 "$GRADFIT_BIN" --out "$work/long" "$work/long.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" --out "$work/half" "$work/half.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" --out "$work/more" "$work/more.yaml"
  expect_rc 0
  "$PYTHON" - "$work/long/results.h5" "$work/half/results.h5" "$work/more/results.h5" <<'PY' || fail "warm start"
import sys, h5py, numpy as np
long, half, more = (h5py.File(p, "r")["runs/sgd"] for p in sys.argv[1:])
for p in long["model"]:
    assert np.array_equal(long["model"][p][:], more["model"][p][:]), p
assert np.array_equal(long["train_loss"][100:], more["train_loss"][:]), "histories differ"
assert more.attrs["init_from"].endswith("half/results.h5"), more.attrs["init_from"]
assert half.attrs["init_from"] == "", half.attrs["init_from"]
assert more.attrs["id"] != half.attrs["id"], "init_from is not part of the run's id"
print("200 epochs = 100 + 100 from init_from: weights and histories identical")
PY
  write_sgd "$work/wider.yaml" 10 ", init_from: half/results.h5" "[16, 12]"
  run mpi 2 "$GRADFIT_BIN" --out "$work/wider" "$work/wider.yaml"
  expect_rc 1
  [ "$(grep -c "gradfit_dist: error" "$work/err")" -eq 1 ] || fail "expected one error line"
  expect_in err "^gradfit_dist: error: run sgd: train\.init_from .*half/results\.h5: run sgd is 2-12-12-1, this run 2-16-12-1 \(warm starts need the same architecture\)$"
  [ ! -e "$work/wider/results.h5" ] || fail "a results file was written" ;;
full_disk)
  # The output folder on a 200 KiB tmpfs fills up mid-sweep: one error line with the system's reason, every file
  # left in the folder whole and readable, no temporary left; with space freed the same command continues.
  [ "$(id -u)" -eq 0 ] || { echo "skipped: mounting a tmpfs needs root"; exit 77; }
  mkdir -p "$work/disk"
  mount -t tmpfs -o size=200k tmpfs "$work/disk" || fail "cannot mount a tmpfs"
  trap 'umount "$work/disk" 2>/dev/null; rm -rf "$work"' EXIT
  run mpi 2 "$GRADFIT_BIN" --progress lines --set train.epochs=50 --out "$work/disk/out" experiments/seed_sweep.yaml
  expect_rc 1
  [ "$(grep -c "gradfit_dist: error" "$work/err")" -eq 1 ] || fail "expected one error line"
  # The disk may fill while a run's or results.h5's temporary is created, written or closed: each is right.
  expect_in err "^gradfit_dist: error: (run .*: )?cannot (create|write|close) HDF5 file '.*\.tmp-[0-9]+': No space left on device"
  ! ls -R "$work/disk/out" | grep -q "tmp-" || fail "a temporary file was left behind"
  "$PYTHON" - "$work/disk/out" <<'PY' || fail "a file in the output folder is not readable"
import sys, pathlib, h5py
files = sorted(pathlib.Path(sys.argv[1]).rglob("*.h5"))
for path in files:
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, o: o[()] if isinstance(o, h5py.Dataset) else None)
print(f"{len(files)} files in the output folder, every dataset readable")
assert files, "no run was written before the disk filled up"
PY
  mount -o remount,size=20m "$work/disk" || fail "cannot grow the tmpfs"
  run mpi 2 "$GRADFIT_BIN" --progress lines --set train.epochs=50 --out "$work/disk/out" experiments/seed_sweep.yaml
  expect_rc 0
  expect_in out "^continuing in .*: [0-9]+ runs already finished"
  "$PYTHON" -c 'import sys, h5py; r = h5py.File(sys.argv[1], "r")["runs"]
assert len(r) == 24 and all(r[n].attrs["status"] == "done" for n in r), len(r)' "$work/disk/out/results.h5" ||
    fail "the rerun did not finish every run" ;;
resume_or_refuse)
  # The same command again continues (nothing left to do); a changed sweep is refused and loses nothing;
  # --fresh starts over.
  cat >"$work/tiny.yaml" <<YAML
data: {target: quadratic, P: [[1, 0], [0, 1]]}
train: {epochs: 3}
YAML
  run "$GRADFIT_BIN" --out "$work/r" "$work/tiny.yaml"
  expect_rc 0
  before=$(md5sum <"$work/r/runs/"*.h5)
  run "$GRADFIT_BIN" --out "$work/r" "$work/tiny.yaml"
  expect_rc 0
  expect_in out "continuing in .*/r: 1 run already finished, 0 to resume from checkpoints"
  [ "$(md5sum <"$work/r/runs/"*.h5)" = "$before" ] || fail "the finished run was rewritten"
  results=$(md5sum <"$work/r/results.h5")
  run "$GRADFIT_BIN" --out "$work/r" --set train.epochs=4 "$work/tiny.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: run 'tiny' in .*/r/results.h5 is not a run of .*tiny.yaml as it is now \\(the sweep file or --set changed existing runs\\); rerun with --fresh"
  [ "$(md5sum <"$work/r/results.h5")" = "$results" ] || fail "the results changed"
  run "$GRADFIT_BIN" --out "$work/r" --fresh --set train.epochs=4 "$work/tiny.yaml"
  expect_rc 0
  "$H5DUMP" -a /runs/tiny/epochs_run "$work/r/results.h5" | grep -q "(0): 4" || fail "--fresh did not start over" ;;
config_typo)
  printf 'data:\n  target: quadratic\n  P: [[1]]\ntrain:\n  batch_size: 10\n  epohcs: 5\n' >"$work/typo.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/typo.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*typo.yaml:6:3: key 'train.epohcs': unknown key; did you mean 'train.epochs'\?$"
  [ "$(grep -c error "$work/err")" -eq 1 ] || fail "expected exactly one error line"
  [ ! -e "$work/r" ] || fail "an output directory was created"
  # In a file with a sweep, an error in the base is at its own line too (the runs used to lose every position).
  printf 'data:\n  target: quadratic\n  P: [[1]]\nsweep:\n  grid: {optimizer.lr: [0.1, 0.2]}\ntrain:\n  epohcs: 5\n' \
    >"$work/typo_sweep.yaml"
  run "$GRADFIT_BIN" --out "$work/r" "$work/typo_sweep.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*typo_sweep.yaml:7:3: key 'train.epohcs': unknown key; did you mean"
  # --set on a key the sweep varies would be overridden by the sweep for every run.
  printf 'data:\n  target: quadratic\n  P: [[1]]\nsweep:\n  grid: {optimizer.lr: [0.1, 0.2]}\n' >"$work/sweep.yaml"
  run "$GRADFIT_BIN" --dry-run --set optimizer.lr=0.5 "$work/sweep.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: --set optimizer.lr=0.5: sweep.grid sets optimizer.lr for every run; change"
  [ ! -e "$work/r" ] || fail "an output directory was created" ;;
bad_data_file)
  echo "not hdf5" >"$work/grads.h5"
  printf 'data:\n  target: file\n  path: grads.h5\n' >"$work/file.yaml"
  run "$GRADFIT_BIN" --out "$work/r" "$work/file.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: cannot open HDF5 file '.*grads.h5' \(missing, or not an HDF5 file\): file signature not found$"
  [ ! -e "$work/r" ] || fail "an output directory was created" ;;
bad_data_on_two_ranks)
  # A shape mismatch that every rank sees: one message, exit code 1, nobody left waiting in a collective.
  printf '1 2 3 4 5 6\n' >"$work/x.txt"
  printf '1 2 3 4 5 6 7 8 9\n' >"$work/g.txt"
  printf 'PATH x\nINPUT-CLASS TEXTFP\nRANK 2\nDIMENSION-SIZES 3 2\n' >"$work/x.cfg"
  printf 'PATH grad\nINPUT-CLASS TEXTFP\nRANK 2\nDIMENSION-SIZES 3 3\n' >"$work/g.cfg"
  "$H5IMPORT" "$work/x.txt" -c "$work/x.cfg" "$work/g.txt" -c "$work/g.cfg" -o "$work/grads.h5" >/dev/null ||
    fail "h5import failed"
  printf 'data:\n  target: file\n  path: grads.h5\n' >"$work/file.yaml"
  run timeout 60 "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/r" "$work/file.yaml"
  expect_rc 1
  expect_in err "grads.h5: dataset 'grad' has shape \(3, 3\) but 'x' has \(3, 2\); they must match"
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line" ;;
rank_invariance)
  # The same float64 run on 1 and on 3 ranks (N=1001, uneven shards): loss histories agree to 1e-10 relative.
  cat >"$work/inv.yaml" <<YAML
data: {target: rosenbrock, dim: 3, sampling: uniform, samples: 1001, low: -1.5, high: 1.5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.01}
train: {epochs: 50, batch_size: 100}
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/n$n" "$work/inv.yaml"
    expect_rc 0
    "$H5DUMP" -m %.17g -d /runs/inv/train_loss -y -w 1 "$work/n$n/results.h5" |
      grep -E '^ *[-0-9.e+]+,?$' | tr -d ' ,' >"$work/loss$n" || fail "h5dump failed"
  done
  [ "$(wc -l <"$work/loss1")" -eq 50 ] || fail "expected 50 losses, got $(wc -l <"$work/loss1")"
  paste "$work/loss1" "$work/loss3" | awk '
    { d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > worst) worst = d }
    END { printf "worst relative difference: %.3e\n", worst; exit !(worst < 1e-10) }' ||
    fail "1-rank and 3-rank loss histories differ" ;;
fault_on_one_rank)
  # Rank 2 of 4 throws after epoch 3 while the others wait in the next allreduce: the job must end, non-zero,
  # within 10 seconds of the failure (the clock starts when the rank fails, not at launch), naming the rank.
  run env GRADFIT_FAULT_MARKER="$work/failed_at" timeout 60 "$MPIEXEC" $MPIEXEC_FLAGS -n 4 "$FAULT_BIN" \
    experiments/seed_quadratic.yaml "$work/r"
  touch "$work/ended"
  [ -s "$work/failed_at" ] || fail "the injected failure never happened"
  # Both times from file modification stamps, one clock.
  elapsed=$(awk -v s="$(stat -c %.9Y "$work/failed_at")" -v e="$(stat -c %.9Y "$work/ended")" 'BEGIN {printf "%.1f", e - s}')
  echo "exit code $rc, $elapsed s after the failure"
  expect_failure
  [ "$rc" -ne 124 ] || fail "the job hung until timeout killed it"
  awk -v t="$elapsed" 'BEGIN {exit !(t < 10)}' || fail "took $elapsed s after the failure"
  expect_in err "gradfit_dist: error on rank 2: run seed_quadratic: injected failure after epoch 3"
  [ ! -e "$work/r/results.h5" ] || fail "a results file was written" ;;
dry_run)
  # --dry-run lists the expanded runs and trains nothing; --set changes the base first.
  run "$GRADFIT_BIN" --dry-run --out "$work/r" --set train.epochs=7 experiments/seed_sweep.yaml
  expect_rc 0
  expect_in out "^24 runs from experiments/seed_sweep.yaml"
  expect_in out "^1 +[0-9a-f]{12} +2-10-10-1 +relu +adam +0.05 +constant +7 +full +activation=relu,widths=10x10,lr=0.05,repeat=0$"
  expect_in out "^24 +[0-9a-f]{12} +2-32-32-1 +softplus +adam +0.02 +constant +7 +full +activation=softplus,widths=32x32,lr=0.02,repeat=1$"
  [ ! -e "$work/r" ] || fail "--dry-run wrote output"
  # The schedule with the rate it ends at; sweep.prune's rungs.
  run "$GRADFIT_BIN" --dry-run --set optimizer.schedule=cosine --set optimizer.lr_final=1e-5 experiments/asha_sweep.yaml
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +6-64-64-1 +softplus +adam +0.0001 +cosine->1e-05 +270 +512 +activation=softplus"
  expect_in out "^sweep.prune: asha on val_loss, rungs at epochs 10 30 90 of 270 "
  # On a data file: the n of the file (its shape read by rank 0, not its data); a missing file is the error
  # training gives, one line.
  "$PYTHON" - "$work/five.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(0).normal(size=(40, 5))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x
PY
  printf 'data: {target: file, path: five.h5}\nmodel: {widths: [8]}\n' >"$work/file.yaml"
  run mpi 2 "$GRADFIT_BIN" --dry-run --out "$work/r" "$work/file.yaml"
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +5-8-1 +softplus +adam "
  rm "$work/five.h5"
  for args in "--dry-run" ""; do
    run mpi 2 "$GRADFIT_BIN" $args --out "$work/r" "$work/file.yaml"
    expect_rc 1
    expect_in err "^gradfit_dist: error: .*five\.h5"
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
    grep 'gradfit_dist: error' "$work/err" | sed 's/^/  /' >>"$work/errors"
  done
  [ "$(sort -u "$work/errors" | wc -l)" -eq 1 ] || fail "--dry-run and training report the missing file differently"
  [ ! -e "$work/r" ] || fail "--dry-run wrote output" ;;
invalid_sweeps_write_nothing)
  # Each invalid file: exit 1, one error line naming file:line:col and key, and no output at all.
  base='data: {target: quadratic, P: [[1, 0], [0, 1]]}'
  i=0
  while IFS='|' read -r body pattern; do
    i=$((i + 1))
    printf '%s\n%b' "$base" "$body" >"$work/bad$i.yaml"
    run mpi 2 "$GRADFIT_BIN" --out "$work/r$i" "$work/bad$i.yaml"
    expect_rc 1
    expect_in err "^gradfit_dist: error: .*bad$i.yaml:$pattern"
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "case $i: expected one error line"
    [ ! -e "$work/r$i" ] || fail "case $i: output was written"
  done <<'CASES'
sweep:\n  grid: {optimizer.lrr: [0.1]}\n|3:10: key 'sweep.grid.optimizer.lrr': unknown key; did you mean 'optimizer.lr'\?
sweep:\n  grid:\n    optimizer.lr: [0.1, -1]\n|4:25: key 'optimizer.lr': must be > 0 \(got -1\)
sweep:\n  zip: {optimizer.lr: [0.1, 0.2], train.epochs: [1]}\n|3:49: key 'sweep.zip.train.epochs': has 1 values
sweep:\n  random: {optimizer.lr: {loguniform: [0, 1]}}\n  samples: 2\n|3:39: key 'sweep.random.optimizer.lr': loguniform needs low > 0
sweep:\n  grid: {train.batch_size: [500]}\n|3:29: key 'train.batch_size': is larger than the 100 samples
key: &a [*a]\n|2:6: key 'key\[0\]': a YAML alias refers to a node that contains it \(a cycle\)$
sweep:\n  grid: {optimizer.lr: &l [0.1, [*l]]}\n|3:24: key 'sweep.grid.optimizer.lr\[1\]\[0\]': a YAML alias refers to a node
CASES
  [ "$i" -eq 7 ] || fail "ran $i cases"
  # Nesting 10,000 levels deep (flow and block style): one line, no crash.
  for style in flow block; do
    "$PYTHON" - "$work/deep.yaml" "$style" <<'PY'
import sys
depth = 10000
with open(sys.argv[1], "w") as f:
    if sys.argv[2] == "flow":
        f.write("key: " + "[" * depth + "]" * depth + "\n")
    else:
        f.write("key:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(depth)))
PY
    run mpi 2 "$GRADFIT_BIN" --out "$work/deep" "$work/deep.yaml"
    expect_rc 1
    expect_in err "^gradfit_dist: error: .*deep.yaml:[0-9]+:[0-9]+: (invalid YAML: )?nested deeper than"
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "$style: expected one error line"
    ! grep -Eiq 'signal|segmentation' "$work/err" || fail "$style: a rank crashed"
    [ ! -e "$work/deep" ] || fail "output was written"
  done
  # The CPU kernels' switch: a value it does not know is one line on every path that trains.
  GRADFIT_CPU_KERNELS=avx512 run mpi 2 "$GRADFIT_BIN" --out "$work/k" experiments/seed_quadratic.yaml
  expect_rc 1
  expect_in err "^gradfit_dist: error: GRADFIT_CPU_KERNELS='avx512': expected auto or baseline$"
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  [ ! -e "$work/k" ] || fail "output was written" ;;
seed_sweep_groups)
  # A small sweep on 4 ranks in groups of 2: every run once, a leaderboard, one merged results file.
  run mpi 4 "$GRADFIT_BIN" --progress lines --out "$work/s" --set train.epochs=20 --set ranks_per_run=2 \
    experiments/seed_sweep.yaml
  expect_rc 0
  expect_in out "24 runs, 4 ranks in 2 groups"
  [ "$(grep -c '^\[ *[0-9]*/24 start\]' "$work/out")" -eq 24 ] || fail "expected 24 starts"
  [ "$(grep -c '^\[[0-9]*/24 done\] done ' "$work/out")" -eq 24 ] || fail "expected 24 finished runs"
  [ "$(h5ls "$work/s/results.h5/runs" | wc -l)" -eq 24 ] || fail "expected 24 runs in results.h5" ;;
sigterm_checkpoint_resume)
  # SIGTERM to the ranks mid-run: a checkpoint, exit code 75, and the same command finishes the sweep.
  stop_at_first_checkpoint "$work/r"
  cat "$work/out" "$work/err"
  expect_rc 75
  expect_in out "stopped by a signal: [0-9]+ runs? unfinished; run the same command again to continue \(exit code 75\)"
  expect_in out " interrupted "
  ls "$work/r/checkpoints/"*.h5 >/dev/null || fail "no checkpoint left for the interrupted run"
  "$H5DUMP" -H "$work/r/results.h5" >/dev/null || fail "results.h5 unreadable after the stop"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  expect_in out "continuing in .*: [0-9]+ runs? already finished, [1-9][0-9]* to resume from checkpoints"
  compare_to_uninterrupted "$work/r" ;;
damaged_files)
  # A flipped bit in a checkpoint's weights, then in a finished run file's weights, is caught by the checksums:
  # the file is set aside (*.damaged) with one warning line, its runs start over or train again, and the finished
  # sweep equals an uninterrupted one.
  flip_bit() {  # $1 file, $2 a pattern of the dataset to damage
    "$PYTHON" - "$1" "$2" <<'PY' || fail "cannot damage $1"
import sys, h5py, re
with h5py.File(sys.argv[1], "r") as f:
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and re.search(sys.argv[2], n) else None)
    d = f[names[0]].id  # chunked (with a checksum): the first chunk's place in the file
    offset = (d.get_offset() if d.get_offset() is not None else d.get_chunk_info(0).byte_offset) + 5
with open(sys.argv[1], "r+b") as raw:
    raw.seek(offset); byte = raw.read(1); raw.seek(offset); raw.write(bytes([byte[0] ^ 0x10]))
print(f"flipped a bit of {names[0]} in {sys.argv[1]}")
PY
  }
  stop_at_first_checkpoint "$work/r"
  checkpoint=$(ls "$work/r/checkpoints/"*.h5 | head -1)
  [ -n "$checkpoint" ] || fail "no checkpoint left by the stop"
  flip_bit "$checkpoint" "parameters/layers.0.weight"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  [ "$(grep -c "gradfit_dist: warning" "$work/out")" -eq 1 ] || fail "expected one warning line"
  expect_in out "^gradfit_dist: warning: '$checkpoint' is damaged: dataset '.*' cannot be read: data error detected by Fletcher32 checksum; kept as $checkpoint\.damaged, its runs start over$"
  run_file=$(ls "$work/r/runs/"*.h5 | head -1)
  flip_bit "$run_file" "model/layers.0.weight"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  [ "$(grep -c "gradfit_dist: warning" "$work/out")" -eq 1 ] || fail "expected one warning line"
  expect_in out "^gradfit_dist: warning: '$run_file' is damaged: dataset '.*' cannot be read: data error detected by Fletcher32 checksum; kept as $run_file\.damaged, its runs train again$"
  [ -f "$run_file.damaged" ] && [ -f "$checkpoint.damaged" ] || fail "the damaged files were not kept"
  compare_to_uninterrupted "$work/r" any_ensembles ;;
damaged_data_chunk)
  # A damaged compressed chunk in a user's data file, read by one rank of two: one error line that names the file,
  # the dataset and the rows, exit code 1, and no output folder (nor the parent folder the job created for it).
  "$PYTHON" - "$work/grads.h5" <<'PY' || fail "cannot write the data file"
import sys, h5py, numpy as np
x = np.random.default_rng(0).normal(size=(3000, 2))
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("x", data=x, chunks=(500, 2), compression="gzip")
    f.create_dataset("grad", data=2 * x, chunks=(500, 2), compression="gzip")
    info = f["grad"].id.get_chunk_info(4)  # rows 2000..2500: in rank 1's shard, 1504..3000
with open(sys.argv[1], "r+b") as raw:
    raw.seek(info.byte_offset + 100); raw.write(b"\x55" * 300)
PY
  printf 'data: {target: file, path: grads.h5}\nmodel: {widths: [8]}\ntrain: {epochs: 3}\n' >"$work/file.yaml"
  label=damaged_chunk
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/new/r/" "$work/file.yaml"
  expect_one_error "^gradfit_dist: error: run .*: cannot read rows 1504\.\.3000 of 'grad' in '.*grads\.h5': "
  grep -q "MPI_ABORT" "$work/err" && fail "the job was aborted instead of ending together"
  [ ! -e "$work/new" ] || fail "the output folder, or its new parent, was left behind" ;;
foreign_optimizer_state)
  # A checkpoint that passes its checksums but whose optimizer state this model cannot take (another version's, or
  # edited): every rank finds it; one error line saying what to do, exit code 1, the checkpoint kept.
  stop_at_first_checkpoint "$work/r"
  checkpoint=$(ls "$work/r/checkpoints/"*.h5 | head -1)
  [ -n "$checkpoint" ] || fail "no checkpoint left by the stop"
  "$PYTHON" - "$checkpoint" <<'PY' || fail "cannot edit $checkpoint"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    names = []
    f.visititems(lambda n, o: names.append(n) if n.endswith("optimizer_state") else None)
    old = f[names[0]]
    data, dtype = old[:], old.dtype
    del f[names[0]]
    f.create_dataset(names[0], data=data[: len(data) // 2].astype(dtype), fletcher32=True)
PY
  label=foreign_state
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_one_error "^gradfit_dist: error: run .*: its checkpoint cannot be used: .*\(delete the checkpoint, or run with --fresh, to train the run from the start\)$"
  grep -q "MPI_ABORT" "$work/err" && fail "the job was aborted instead of ending together"
  [ -f "$checkpoint" ] || fail "the checkpoint was removed" ;;
sigkill_resume)
  # SIGKILL at five moments, rerunning the same command each time: twice a little after a checkpoint write
  # (mid-epoch, the checkpoints are taken after a step inside an epoch), and at three exact moments that the fault_job twin of gradfit_dist
  # freezes at: in a checkpoint write (temporary complete, not yet renamed), between two runs, and in a
  # checkpoint write again. results.h5 stays readable, and the finished sweep equals an uninterrupted one.
  write_resume_sweep "$work/s.yaml"
  kill_job() { pkill -KILL -f "^($GRADFIT_BIN|$FAULT_BIN) .*$work/r( |$)"; wait "$1"; }
  for moment in "timed 0.05" "freeze_in_checkpoint:3" "freeze_before_run:2" "timed 0.2" "freeze_in_checkpoint:2"; do
    rm -f "$work/frozen"
    case "$moment" in
    timed*)
      # Some time after this invocation's first checkpoint write, so that a run is under way whatever the
      # machine's speed.
      touch "$work/launched"
      mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml" </dev/null >"$work/out" 2>&1 &
      job=$!
      for _ in $(seq 1200); do
        [ -n "$(find "$work/r/checkpoints" -name '*.h5' -newer "$work/launched" 2>/dev/null)" ] && break
        sleep 0.05
      done
      sleep "${moment#timed }" ;;
    *)
      GRADFIT_FAULT_MODE=$moment GRADFIT_FAULT_MARKER="$work/frozen" \
        mpi 2 "$FAULT_BIN" "$work/s.yaml" "$work/r" </dev/null >"$work/out" 2>&1 &
      job=$!
      wait_for_file "$work" frozen || fail "$moment: never reached" ;;
    esac
    kill_job "$job"
    echo "killed at $moment: $(ls "$work/r/runs" 2>/dev/null | grep -c '\.h5$') finished runs," \
      "$(ls "$work/r/checkpoints" 2>/dev/null | grep -c '\.h5$') checkpoints," \
      "$(ls "$work/r/checkpoints" "$work/r/runs" "$work/r" 2>/dev/null | grep -c 'tmp-') temporaries caught mid-write," \
      "checkpointed at epochs:" \
      $(for c in "$work/r/checkpoints/"*.h5; do [ -e "$c" ] && "$H5DUMP" -a epoch "$c" | awk '/\(0\)/ {print $2}'; done)
    if [ -e "$work/r/results.h5" ]; then "$H5DUMP" -H "$work/r/results.h5" >/dev/null || fail "results.h5 unreadable"; fi
    case "$moment" in freeze_in_checkpoint*)
      ls "$work/r/checkpoints" | grep -q 'tmp-' || fail "no temporary left by the kill in a checkpoint write" ;;
    esac
  done
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  expect_in out "continuing in "
  compare_to_uninterrupted "$work/r" ;;
prune_rule_and_groups)
  # ASHA and median pruning replayed independently (tests/cli/check_pruning.py) on the histories of the same sweep
  # trained in full: every pruned run shares the full run's history to the last epoch it trained, and exactly the
  # runs the rule names stop, at the rung it names. Deterministic mode makes the same decisions on 1 rank and on 2
  # groups; the pruned sweep trains well under a third of the epochs.
  write_prune_sweep "$work/full.yaml"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/full" "$work/full.yaml"
  expect_rc 0
  for prune in "asha 4 {method: asha, min_epochs: 4}" "median 6 {method: median, min_epochs: 6, metric: train_loss}"; do
    read -r method min settings <<<"$prune"
    metric=val_loss
    [ "$method" = median ] && metric=train_loss
    write_prune_sweep "$work/$method.yaml" "$settings"
    for ranks in 1 2; do
      run mpi "$ranks" "$GRADFIT_BIN" --progress lines --out "$work/$method$ranks" "$work/$method.yaml"
      expect_rc 0
      expect_in out "sweep.prune: $method on $metric"
      expect_in out "rung 1/[0-9]+ at epoch $min: 12 runs"
      run "$PYTHON" tests/cli/check_pruning.py "$work/$method$ranks/results.h5" "$work/full/results.h5" \
        --method "$method" --min-epochs "$min" --metric "$metric"
      expect_rc 0
    done
    run "$PYTHON" tests/cli/check_pruning.py --same-decisions "$work/${method}1/pruning.tsv" "$work/${method}2/pruning.tsv"
    expect_rc 0
    run "$PYTHON" scripts/compare_results.py "$work/${method}1/results.h5" "$work/${method}2/results.h5"
    expect_rc 0
  done
  # With early stopping (patience 2) runs end between rungs, and one ending at a rung is no candidate there.
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/full_p" --set train.patience=2 "$work/full.yaml"
  expect_rc 0
  expect_in out " early_stopped "
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/asha_p" --set train.patience=2 "$work/asha.yaml"
  expect_rc 0
  run "$PYTHON" tests/cli/check_pruning.py "$work/asha_p/results.h5" "$work/full_p/results.h5" --min-epochs 4
  expect_rc 0
  # The pruned runs are in /summary with their rung.
  "$PYTHON" - "$work/asha2/results.h5" <<'PY' || fail "summary"
import sys, h5py
s = h5py.File(sys.argv[1], "r")["summary"][:]
status = [v.decode() for v in s["status"]]
assert status.count("pruned") == 11 and status.count("done") == 1, status
assert sorted(set(int(p) for p in s["pruned_at_epoch"])) == [0, 4, 12], s["pruned_at_epoch"]
assert sorted(set(int(r) for r in s["rung"])) == [0, 1, 2], s["rung"]
PY
  ;;
prune_kill_resume)
  # SIGKILL at four moments of an ASHA sweep, rerunning the same command each time (each counts from its start):
  # in a checkpoint write of the first rung, right after its decision, in a checkpoint write of the second rung,
  # and between two runs of a resumed job. The finished sweep made the same decisions
  # as an uninterrupted one and equals it bit for bit, and a run pruned before a kill never trains again.
  write_prune_sweep "$work/s.yaml" "{method: asha, min_epochs: 4}"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/reference" "$work/s.yaml"
  expect_rc 0
  kill_job() { pkill -KILL -f "^($GRADFIT_BIN|$FAULT_BIN) .*$work/r( |$)"; wait "$1"; }
  for moment in "freeze_in_checkpoint:3" "freeze_before_run:7" "freeze_in_checkpoint:2" "freeze_before_run:2"; do
    rm -f "$work/frozen"
    GRADFIT_FAULT_MODE=$moment GRADFIT_FAULT_MARKER="$work/frozen" \
      mpi 2 "$FAULT_BIN" "$work/s.yaml" "$work/r" </dev/null >"$work/out" 2>&1 &
    job=$!
    wait_for_file "$work" frozen || fail "$moment: never reached"
    kill_job "$job"
    pruned_before=$(cut -f1,4 "$work/r/pruning.tsv" 2>/dev/null | awk '$2 == "pruned" {print $1}' | sort)
    echo "killed at $moment: $(grep -c . "$work/r/pruning.tsv" 2>/dev/null) lines in pruning.tsv," \
      "$(ls "$work/r/runs" | grep -c '\.h5$') results files, $(ls "$work/r/checkpoints" | grep -c '\.h5$') checkpoints"
  done
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  expect_in out "continuing in .*: [1-9][0-9]* runs already finished"
  # The start lines go on counting from the runs already finished.
  finished=$(sed -n 's/.*: \([0-9]*\) runs already finished.*/\1/p' "$work/out")
  expect_in out "^\\[ *$((finished + 1))/12 start\\]"
  # A run pruned before a kill trains no further: where a kill came before its results file was written, the
  # resumed job takes it up again only to end it, pruned, at the epoch of its rung (as in the reference).
  for id in $pruned_before; do
    grep -q "start\] $id" "$work/out" || continue
    epochs=$("$PYTHON" -c 'import sys, h5py
runs = h5py.File(sys.argv[1])["runs"]
print([len(g["epoch"]) for g in runs.values() if g.attrs["id"] == sys.argv[2]][0])' "$work/reference/results.h5" "$id")
    grep -Eq "done\] pruned +$id .* $epochs epochs " "$work/out" || fail "pruned run $id trained again"
  done
  run "$PYTHON" tests/cli/check_pruning.py --same-decisions "$work/reference/pruning.tsv" "$work/r/pruning.tsv"
  expect_rc 0
  run "$PYTHON" scripts/compare_results.py "$work/reference/results.h5" "$work/r/results.h5"
  expect_rc 0
  ;;
prune_errors)
  # Bad sweep.prune settings: one line naming the key, nothing written; decisions made under other settings are
  # refused on resume.
  for bad in "{method: hyperband}|'hyperband' is not one of none, asha, median" \
    "{method: asha, min_epochs: 36}|min_epochs.*must be >= 1 and below train.epochs \\(36\\)" \
    "{method: median, reduction_factor: 2}|reduction_factor.*applies to method asha only" \
    "{method: asha, metric: loss}|'loss' is not one of val_loss, train_loss, rel_grad_error" \
    "{min_epochs: 3}|method.*missing required key" "{method: asha, eta: 2}|unknown key"; do
    write_prune_sweep "$work/bad.yaml" "${bad%%|*}"
    run "$GRADFIT_BIN" --out "$work/bad" "$work/bad.yaml"
    expect_rc 1
    expect_in err "bad.yaml:[0-9]+:[0-9]+: key 'sweep.prune.*${bad#*|}"
    [ "$(grep -c . "$work/err")" -eq 1 ] || fail "not one line"
    [ ! -e "$work/bad" ] || fail "$work/bad was created"
  done
  write_prune_sweep "$work/v.yaml" "{method: asha, metric: val_loss}"
  sed -i 's/val_fraction: 0.2, //' "$work/v.yaml"
  run "$GRADFIT_BIN" --out "$work/bad" "$work/v.yaml"
  expect_rc 1
  expect_in err "key 'sweep.prune.metric': val_loss needs train.val_fraction > 0 in every run"
  write_prune_sweep "$work/e.yaml"
  sed -i 's/    model.activation: .*/    train.epochs: [36, 72]/' "$work/e.yaml"
  echo "  prune: {method: asha}" >>"$work/e.yaml"
  run "$GRADFIT_BIN" --out "$work/bad" "$work/e.yaml"
  expect_rc 1
  expect_in err "the runs differ in train.epochs \(36 and 72\)"
  run "$GRADFIT_BIN" --out "$work/bad" --set sweep.prune.metod=asha "$work/v.yaml"
  expect_rc 1
  expect_in err "unknown key 'sweep.prune.metod'; did you mean 'sweep.prune.method'\\?"
  write_prune_sweep "$work/a.yaml" "{method: asha, min_epochs: 4}"
  # --set turns pruning off: every run trains every epoch, and no decisions file is written.
  run mpi 2 "$GRADFIT_BIN" --out "$work/off" --set sweep.prune.method=none "$work/a.yaml"
  expect_rc 0
  [ "$(grep -c '^\[.*done\] done .* 36 epochs' "$work/out")" -eq 12 ] || fail "--set sweep.prune.method=none pruned"
  [ ! -e "$work/off/pruning.tsv" ] || fail "a decisions file without pruning"
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/a.yaml"
  expect_rc 0
  write_prune_sweep "$work/a.yaml" "{method: asha, min_epochs: 6}"
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/a.yaml"
  expect_rc 1
  expect_in err "pruning.tsv: its decisions were made under other settings .*rerun with --fresh"
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "not one error line"
  ;;
analyze)
  # scripts/analyze.py on a small seed sweep and a sweep with validation: the best run (checked against the rule
  # computed here from the runs' attributes), leaderboard, CSV with every run, the PNG plots, load_summary's str
  # values, pruned runs ranked after the others (a sweep pruned with ASHA), --help, and
  # an ImportError that names the interpreter.
  run "$PYTHON" scripts/analyze.py --help
  expect_rc 0
  expect_in out "usage: analyze.py"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/s" --set train.epochs=30 experiments/seed_sweep.yaml
  expect_rc 0
  run "$PYTHON" scripts/analyze.py "$work/s/results.h5" --top 3 --csv "$work/runs.csv" --plots "$work/plots"
  expect_rc 0
  expect_in out "24 runs \\(24 done\\), ranked by final_rel_grad_error"
  expect_in out "^ +rank +id +status +final_rel_grad_error +final_loss +epochs_run +activation +widths +lr +repeat$"
  [ "$(grep -c '^ *[1-3] [0-9a-f]\{12\} ' "$work/out")" -eq 3 ] || fail "expected 3 leaderboard rows"
  [ "$(wc -l <"$work/runs.csv")" -eq 25 ] || fail "expected a header and 24 rows in the CSV"
  expect_best_run "$work/s/results.h5" final_rel_grad_error
  expect_plots "$work/plots" rel_grad_error_by_activation train_loss_by_activation importance
  [ ! -e "$work/plots/pruning.png" ] || fail "pruning.png for a sweep that does not prune"
  "$PYTHON" - "$work/s/results.h5" <<'PY' || fail "load_summary"
import sys
sys.path.insert(0, "scripts")
from analyze import load_summary
table = load_summary(sys.argv[1])
assert len(table) == 24, len(table)
for column in ("id", "name", "status", "params", "param.activation", "param.widths", "param.lr", "param.repeat"):
    kinds = {type(v) for v in table[column]}
    assert kinds == {str}, f"{column}: {kinds}"
assert set(table["param.activation"]) == {"relu", "tanh", "softplus"}, set(table["param.activation"])
print("load_summary: 24 rows, strings decoded")
PY
  run "$PYTHON" scripts/analyze.py "$work/s/results.h5" --by depth --no-plots
  expect_rc 0
  run "$PYTHON" scripts/analyze.py "$work/s/results.h5" --by depth
  expect_failure
  expect_in err "--by depth: not a swept parameter of this sweep \\(swept: activation, widths, lr, repeat\\)"
  # A sweep pruned with ASHA: the best run is the one done run, every pruned run ranks after it, and the pruning
  # view is drawn.
  write_prune_sweep "$work/p.yaml" "{method: asha, min_epochs: 4}"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/p" "$work/p.yaml"
  expect_rc 0
  run "$PYTHON" scripts/analyze.py "$work/p/results.h5" --top 30 --plots "$work/plots_pruned"
  expect_rc 0
  expect_best_run "$work/p/results.h5" best_val_loss
  expect_in out "^ +1 [0-9a-f]{12} +done "
  [ "$(grep -cE '^ +([2-9]|1[0-2]) [0-9a-f]{12} +pruned ' "$work/out")" -eq 11 ] || fail "expected 11 pruned rows after it"
  expect_plots "$work/plots_pruned" rel_grad_error_by_lr val_loss_by_lr train_loss_by_lr importance pruning
  # With validation (early stopping too): ranked by best_val_loss, and a validation-loss plot beside the others.
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/v" --set train.epochs=40 experiments/minibatch_validation.yaml
  expect_rc 0
  run "$PYTHON" scripts/analyze.py "$work/v/results.h5" --plots "$work/plots_v"
  expect_rc 0
  expect_in out "8 runs .*ranked by best_val_loss"
  expect_best_run "$work/v/results.h5" best_val_loss
  expect_plots "$work/plots_v" rel_grad_error_by_lr val_loss_by_lr train_loss_by_lr importance
  # One definition of best: the console's leaderboard (printed again by the finished sweep), analyze.py and
  # --run best name the same run.
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/v" --set train.epochs=40 experiments/minibatch_validation.yaml
  expect_rc 0
  leader=$(awk '$1 == 1 && $2 ~ /^[0-9a-f]+$/ && length($2) == 12 {print $2; exit}' "$work/out")
  [ -n "$leader" ] || fail "no leaderboard"
  expect_in out "ranked by best_val_loss"
  run "$PYTHON" scripts/analyze.py "$work/v/results.h5" --no-plots
  grep -Fq "(id $leader, " "$work/out" || fail "analyze.py's best run is not the leaderboard's first ($leader)"
  run "$GRADFIT_BIN" export "$work/v/results.h5" --run best --out "$work/best.pt"
  expect_rc 0
  expect_in out "\\(id $leader, "
  # Without h5py (-S: no site-packages) the one error line names the interpreter and what to install.
  interpreter=$("$PYTHON" -S -c 'import sys; print(sys.executable)')
  run "$PYTHON" -S scripts/analyze.py "$work/s/results.h5"
  expect_failure
  grep -Fq "module 'h5py' is missing for the interpreter $interpreter; install it there" "$work/err" \
    || fail "the ImportError does not name $interpreter"
  expect_in err "pip install h5py pandas matplotlib" ;;
slurm_script)
  # slurm/gradfit.sbatch with a local mpirun standing in for srun: passes its arguments, resumes, and on exit
  # code 75 asks Slurm to requeue the job (scontrol, also a stand-in here).
  bash -n slurm/gradfit.sbatch || fail "syntax"
  bash -n slurm/gradfit-multinode.sbatch || fail "syntax of the multi-node example"
  mkdir -p "$work/bin"
  # srun's own options are dropped; the rest runs under mpirun -n 2.
  printf '#!/bin/sh\nwhile [ "${1#--}" != "$1" ]; do shift; done\nexec "%s" %s -n 2 "$@"\n' \
    "$MPIEXEC" "$MPIEXEC_FLAGS" >"$work/bin/srun"
  printf '#!/bin/sh\necho "scontrol $*" >>"%s/scontrol.log"\n' "$work" >"$work/bin/scontrol"
  chmod +x "$work/bin/srun" "$work/bin/scontrol"
  cat >"$work/s.yaml" <<YAML
data: {target: quadratic, P: [[1, 0], [0, 1]]}
train: {epochs: 5}
sweep: {grid: {optimizer.lr: [0.1, 0.01]}}
YAML
  run env PATH="$work/bin:$PATH" SLURM_JOB_ID=4242 SLURM_SUBMIT_DIR="$PWD" GRADFIT_BIN="$GRADFIT_BIN" \
    bash slurm/gradfit.sbatch "$work/s.yaml" --out "$work/r"
  expect_rc 0
  expect_in out "2 runs, 2 ranks"
  [ ! -e "$work/scontrol.log" ] || fail "requeued a finished job"
  [ "$(ls "$work/r/runs" | wc -l)" -eq 2 ] || fail "expected 2 finished runs"
  # Slurm's warning signal: SIGUSR1 to the batch shell reaches the ranks (through the stand-in srun, mpirun),
  # every run checkpoints, the job exits 75 and asks to be requeued; the requeued command finishes the sweep.
  write_resume_sweep "$work/long.yaml"
  env PATH="$work/bin:$PATH" SLURM_JOB_ID=4242 SLURM_SUBMIT_DIR="$PWD" GRADFIT_BIN="$GRADFIT_BIN" \
    bash slurm/gradfit.sbatch "$work/long.yaml" --out "$work/long" --progress lines </dev/null >"$work/out" 2>&1 &
  job=$!
  wait_for_file "$work/long/checkpoints" '*.h5' || fail "no checkpoint appeared"
  pkill -USR1 -f "^bash slurm/gradfit.sbatch $work/long.yaml" || fail "no batch shell to signal"
  wait "$job"; rc=$?
  cat "$work/out"
  expect_rc 75
  grep -q "scontrol requeue 4242" "$work/scontrol.log" || fail "did not requeue"
  run env PATH="$work/bin:$PATH" SLURM_JOB_ID=4242 SLURM_SUBMIT_DIR="$PWD" GRADFIT_BIN="$GRADFIT_BIN" \
    bash slurm/gradfit.sbatch "$work/long.yaml" --out "$work/long" --progress lines
  expect_rc 0
  expect_in out "to resume from checkpoints"
  [ "$(ls "$work/long/runs" | wc -l)" -eq 4 ] || fail "expected 4 finished runs"
  # A plain scancel (SIGTERM): the runs checkpoint, and the job is not requeued. (Its exit code is mpirun's here,
  # 1, where srun passes on 75: tests/slurm checks that with a real Slurm.)
  rm "$work/scontrol.log"
  env PATH="$work/bin:$PATH" SLURM_JOB_ID=4243 SLURM_SUBMIT_DIR="$PWD" GRADFIT_BIN="$GRADFIT_BIN" \
    bash slurm/gradfit.sbatch "$work/long.yaml" --out "$work/term" --progress lines </dev/null >"$work/out" 2>&1 &
  job=$!
  wait_for_file "$work/term/checkpoints" '*.h5' || fail "no checkpoint appeared"
  pkill -TERM -f "^bash slurm/gradfit.sbatch $work/long.yaml --out $work/term" || fail "no batch shell to signal"
  wait "$job"
  cat "$work/out"
  [ ! -e "$work/scontrol.log" ] || fail "requeued after SIGTERM: $(cat "$work/scontrol.log")"
  [ "$(cat "$work/term/outcome")" = interrupted ] || fail "outcome: $(cat "$work/term/outcome")" ;;
group_bad_data)
  # A sweep over four data files, the second with a NaN: the group that meets it fails, the job ends (exit 1, one
  # error line naming the run and the cause) without waiting for the other groups, whose runs stop with a
  # checkpoint. Once the file is fixed, the same command finishes the sweep.
  write_data_file "$work/good1.h5"
  write_data_file "$work/good2.h5"
  write_data_file "$work/good3.h5"
  for n in 2 4; do
    for k in 1 2; do
      label="n=$n ranks_per_run=$k"
      write_data_file "$work/bad.h5" 3
      cat >"$work/nan$n$k.yaml" <<YAML
name: nan
ranks_per_run: $k
ensemble_size: 1
data: {target: file, path: good1.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 2000}
sweep:
  grid: {data.path: [good1.h5, bad.h5, good2.h5, good3.h5]}
YAML
      timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n $n "$GRADFIT_BIN" --progress lines --out "$work/r$n$k" "$work/nan$n$k.yaml"
      expect_one_error "^gradfit_dist: error: run path=bad\.h5: .*/bad\.h5: dataset 'grad' has NaN or Inf in row 3$"
      check_after_group_failure "$work/r$n$k" "path=bad.h5"
      [ -z "$(ls "$work/r$n$k/checkpoints" | grep "$(grep -o '[0-9a-f]\{12\} path=bad.h5' "$work/out" | cut -c1-12)")" ] ||
        fail "$label: a checkpoint of the failed run"
      if [ "$n$k" = 22 ]; then  # one group, one run after another: the run before the bad file finished
        "$H5DUMP" -a /runs/path=good1.h5/status "$work/r$n$k/results.h5" | grep -q '"done"' ||
          fail "$label: the run trained before the failure is not in results.h5 as done"
      fi
      write_data_file "$work/bad.h5"
      run timeout 60 "$MPIEXEC" $MPIEXEC_FLAGS -n $n "$GRADFIT_BIN" --progress lines --out "$work/r$n$k" "$work/nan$n$k.yaml"
      expect_rc 0
      "$PYTHON" -c 'import sys, h5py; r = h5py.File(sys.argv[1], "r")["runs"]
assert sorted(r[n].attrs["status"] for n in r) == ["done"] * 4, {n: r[n].attrs["status"] for n in r}' \
        "$work/r$n$k/results.h5" || fail "$label: the rerun did not finish every run"
    done
  done ;;
group_unwritable_run_file)
  # The results file of one run cannot be written (a directory is in its place): the group's root fails, the
  # group agrees, and the job ends with one error line naming the run.
  group_fault unwritable_run_file:2 \
    "^gradfit_dist: error: run lr=0\.03: cannot rename '.*/runs/[0-9a-f]{12}\.h5\.tmp-[0-9]+' to '.*/runs/[0-9a-f]{12}\.h5': Is a directory$" ;;
group_fault_in_run)
  # The group training run 2 fails in a step it shares (its root throws in the before_run seam, inside
  # parallel::all_or_none): the group agrees, and the job ends with one error line naming the run.
  group_fault throw_before_run:2 "^gradfit_dist: error: run lr=0\.03: injected failure before run 2$" ;;
one_rank_fault_in_sweep)
  # The last rank throws after epoch 3 of the run it trains, alone (its group's other rank, if any, waits in the
  # allreduce): it names itself and the run, and MPI_Abort ends the job.
  for n in 2 4; do
    for k in 1 2; do
      label="n=$n ranks_per_run=$k"
      write_lr_sweep "$work/s$n$k.yaml" $k 300
      timed_run env GRADFIT_FAULT_RANK=$((n - 1)) "$MPIEXEC" $MPIEXEC_FLAGS -n $n "$FAULT_BIN" \
        "$work/s$n$k.yaml" "$work/r$n$k"
      expect_one_error "^gradfit_dist: error on rank $((n - 1)): run lr=0\.0[1-8]: injected failure after epoch 3$"
      # The failing rank wrote the outcome before MPI_Abort ended the job.
      grep -Eq "^failed: error on rank $((n - 1)): run lr=0\.0[1-8]: injected failure after epoch 3$" "$work/r$n$k/outcome" ||
        fail "$label: outcome: $(cat "$work/r$n$k/outcome" 2>&1)"
    done
  done ;;
standardize)
  # data.standardize on x in [0, 1000]^2 and S ~ 1e4 trains the same model as on its standardized twin (the same
  # data transformed by the run's own mu, sigma, s, v0): histories and weights equal; eval and export of the
  # standardized run predict in the original units, matching the run's final metrics, and the twin's predictions
  # scaled back.
  write_large_units_file "$work/big.h5"
  write_std_run "$work/std.yaml" big.h5 true
  write_std_run "$work/raw.yaml" big.h5 false
  for r in std raw; do run "$GRADFIT_BIN" --out "$work/$r" "$work/$r.yaml"; expect_rc 0; done
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the twin"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/std/results.h5") as r, h5py.File(w + "/big.h5") as d, h5py.File(w + "/twin.h5", "w") as t:
    s = r["runs/std/standardization"]
    mu, sigma = s["input_mean"][:], s["input_scale"][:]
    scale, offset = s.attrs["value_scale"], s.attrs["value_offset"]
    print(f"mu {mu}, sigma {sigma}, s {scale:.6e}, v0 {offset:.6e}")
    t["x"] = (d["x"][:] - mu) / sigma
    t["grad"] = d["grad"][:] * (sigma / scale)
    t["value"] = (d["value"][:] - offset) / scale
    g = t["grad"][:]
    assert abs(np.sqrt(np.mean(g * g)) - 1) < 1e-12, "S~ has no unit RMS"
    assert np.abs(t["x"][:].mean(0)).max() < 1e-12 and np.abs(t["x"][:].std(0) - 1).max() < 1e-12
PY
  write_std_run "$work/twin.yaml" twin.h5 false
  run "$GRADFIT_BIN" --out "$work/twin" "$work/twin.yaml"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the standardized run differs from its twin"
import sys, h5py, numpy as np
w = sys.argv[1]
std, twin, raw = (h5py.File(f"{w}/{r}/results.h5")["runs/std"] for r in ("std", "twin", "raw"))
for k in ("train_loss", "rel_grad_error"):
    d = np.abs(std[k][:] - twin[k][:]).max() / np.abs(twin[k][:]).max()
    print(f"history {k}: standardized run vs twin, max relative difference {d:.3e}")
    assert d <= 1e-12, k
for p in std["model"]:
    assert np.allclose(std["model"][p][:], twin["model"][p][:], rtol=1e-12, atol=1e-14), p
print(f"last epoch rel_grad_error (model units): standardized {std['rel_grad_error'][-1]:.6e}, twin "
      f"{twin['rel_grad_error'][-1]:.6e}; without standardization {raw['rel_grad_error'][-1]:.6e}")
print(f"final_rel_grad_error: standardized (user units) {std.attrs['final_rel_grad_error']:.6e}, twin "
      f"{twin.attrs['final_rel_grad_error']:.6e}, raw {raw.attrs['final_rel_grad_error']:.6e}")
assert abs(std.attrs["final_rel_grad_error"] / twin.attrs["final_rel_grad_error"] - 1) < 0.05
assert std.attrs["standardize"] == 1 and twin.attrs["standardize"] == 0 and "standardization" not in twin
assert std.attrs["final_rel_grad_error"] < 0.2 * raw.attrs["final_rel_grad_error"], "standardizing did not help"
PY
  run "$GRADFIT_BIN" eval "$work/std/results.h5" "$work/big.h5" --out "$work/pstd.h5"
  expect_rc 0
  rel=$(awk '/^relative gradient error/ {print $NF}' "$work/out")
  run "$GRADFIT_BIN" eval "$work/twin/results.h5" "$work/twin.h5" --out "$work/ptwin.h5"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/std/results.h5" --out "$work/std.pt"
  expect_rc 0
  "$PYTHON" - "$work" "$rel" <<'PY' || fail "eval or export of the standardized run"
import sys, h5py, numpy as np, torch
w, rel = sys.argv[1], float(sys.argv[2])
with h5py.File(w + "/std/results.h5") as r, h5py.File(w + "/big.h5") as d, h5py.File(w + "/pstd.h5") as p, \
     h5py.File(w + "/ptwin.h5") as t:
    g = r["runs/std"]
    s = g["standardization"]
    sigma, scale, offset = s["input_scale"][:], s.attrs["value_scale"], s.attrs["value_offset"]
    final = g.attrs["final_rel_grad_error"]
    x, S, pv, pg = d["x"][:], d["grad"][:], p["value"][:], p["grad"][:]
    tv, tg = t["value"][:], t["grad"][:]
own = np.linalg.norm(pg - S) / np.linalg.norm(S)
print(f"eval in user units: printed rel error {rel:.9e}, from PRED.h5 {own:.9e}, run's final_rel_grad_error {final:.9e}")
assert abs(rel - own) <= 1e-6 * own and abs(own - final) <= 1e-10 * final
dg = np.abs(pg - tg * (scale / sigma)).max() / np.abs(pg).max()
dv = np.abs(pv - (tv * scale + offset)).max() / np.abs(pv).max()
print(f"eval of the standardized run vs the twin's eval scaled back: grad {dg:.3e}, value {dv:.3e}")
assert dg <= 1e-12 and dv <= 1e-12
m = torch.jit.load(w + "/std.pt")
xt = torch.from_numpy(x)
with torch.no_grad():
    ev, eg = m(xt).numpy(), m.gradient(xt).numpy()
dv, dg = np.abs(ev - pv).max() / np.abs(pv).max(), np.abs(eg - pg).max() / np.abs(pg).max()
print(f"export vs eval (user units): value {dv:.3e}, grad {dg:.3e}")
assert dv <= 1e-12 and dg <= 1e-12
PY
  ;;
standardize_ranks_resume)
  # With validation rows, a value term and mini-batches: mu, sigma, s, v0 come from the training rows alone (checked
  # against numpy with the same hold-out hash), 1 and 3 ranks give the same run, and a run stopped at a checkpoint
  # and continued equals the uninterrupted one bit for bit.
  write_large_units_file "$work/big.h5"
  write_std_run "$work/std.yaml" big.h5 true ", val_fraction: 0.25, value_weight: 0.1, batch_size: 100" 60
  for n in 1 3; do run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/std.yaml"; expect_rc 0; done
  "$PYTHON" - "$work" <<'PY' || fail "1 and 3 ranks differ, or the standardization is not the training rows'"
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/r{n}/results.h5")["runs/std"] for n in (1, 3))
M = (1 << 64) - 1
def held_out(N, fraction, seed):  # train/batches.cpp: holdout_rows
    threshold = int(fraction * 2.0 ** 64)
    out = np.zeros(N, bool)
    for i in range(N):
        z = (seed * 0x9e3779b97f4a7c15 + i + 0x632be59bd9b4e019) & M
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        out[i] = (z ^ (z >> 31)) < threshold
    return out
with h5py.File(w + "/big.h5") as d:
    x, S, v = d["x"][:], d["grad"][:], d["value"][:]
train = ~held_out(len(x), 0.25, 2)
mu = x[train].mean(0); sigma = x[train].std(0)
scale = np.sqrt(np.mean((S[train] * sigma) ** 2)); offset = v[train].mean()
for g in (a, b):
    s = g["standardization"]
    for name, got, want in (("mu", s["input_mean"][:], mu), ("sigma", s["input_scale"][:], sigma),
                            ("s", s.attrs["value_scale"], scale), ("v0", s.attrs["value_offset"], offset)):
        d = np.abs(np.asarray(got) - want).max() / np.abs(want).max()
        print(f"ranks {g.attrs['ranks']}: {name} vs numpy over the {train.sum()} training rows: {d:.2e}")
        assert d <= 1e-14, name
for k in ("train_loss", "rel_grad_error", "val_loss"):
    d = np.abs(a[k][:] - b[k][:]).max() / np.abs(a[k][:]).max()
    print(f"history {k}: 1 vs 3 ranks max relative difference {d:.3e}")
    assert d <= 1e-10, k
for k in ("final_loss", "final_rel_grad_error", "final_val_loss"):
    assert abs(a.attrs[k] - b.attrs[k]) <= 1e-10 * abs(a.attrs[k]), k
print(f"final (user units): loss {a.attrs['final_loss']:.6e}, rel_grad_error {a.attrs['final_rel_grad_error']:.6e}, "
      f"val_loss {a.attrs['final_val_loss']:.6e}; best_val_loss (model units) {a.attrs['best_val_loss']:.6e}")
PY
  # Resume: a checkpoint every epoch, SIGTERM once the first is there, then the same command again.
  sed -i -e 's/^train: /checkpoint: {every_epochs: 1, every_seconds: 0}\ntrain: /' -e 's/epochs: 60,/epochs: 600,/' \
    "$work/std.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/ref" "$work/std.yaml"
  expect_rc 0
  stop_at_first_checkpoint "$work/stop" "$work/std.yaml"
  expect_rc 75
  run mpi 2 "$GRADFIT_BIN" --out "$work/stop" "$work/std.yaml"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the resumed run differs"
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/{r}/results.h5")["runs/std"] for r in ("ref", "stop"))
for k in ("train_loss", "rel_grad_error", "val_loss", "grad_norm"):
    assert np.array_equal(a[k][:], b[k][:]), k
for p in a["model"]:
    assert np.array_equal(a["model"][p][:], b["model"][p][:]), p
for k in ("final_loss", "final_rel_grad_error", "final_val_loss"):
    assert a.attrs[k] == b.attrs[k], k
for k in ("input_mean", "input_scale"):
    assert np.array_equal(a["standardization"][k][:], b["standardization"][k][:]), k
print("stopped at a checkpoint and resumed: histories, weights, final metrics and standardization bit for bit")
PY
  ;;
standardize_warm_start)
  # train.init_from with data.standardize: from a run of the same standardization the weights go over as they are
  # (full-batch SGD: 100 + 100 epochs = 200, bit for bit); from a run trained under another standardization (or
  # none) they are re-expressed so that the warm start begins from the same V(x) in the user's units.
  write_large_units_file "$work/big.h5"
  write_sgd_std() {  # $1 name, $2 standardize, $3 epochs, $4 lr, $5 extra train keys
    cat >"$work/$1.yaml" <<YAML
name: w
data: {target: file, path: big.h5, standardize: $2}
model: {widths: [12, 12], activation: tanh, dtype: float64}
optimizer: {name: sgd, lr: $4}
train: {epochs: $3, seed: 4${5:-}}
YAML
    run "$GRADFIT_BIN" --out "$work/$1" "$work/$1.yaml"
    expect_rc 0
  }
  write_sgd_std long true 200 0.05
  write_sgd_std half true 100 0.05
  write_sgd_std more true 100 0.05 ", init_from: half/results.h5"
  "$PYTHON" - "$work" <<'PY' || fail "cannot write other.h5"
import sys, h5py
with h5py.File(sys.argv[1] + "/big.h5") as d, h5py.File(sys.argv[1] + "/other.h5", "w") as o:
    o["x"], o["grad"], o["value"] = 0.5 * d["x"][:] + 100, 3 * d["grad"][:], 2 * d["value"][:] + 5e6
PY
  sed 's/big.h5/other.h5/' "$work/half.yaml" >"$work/other.yaml"
  run "$GRADFIT_BIN" --out "$work/other" "$work/other.yaml"
  expect_rc 0
  write_sgd_std moved true 1 1e-300 ", init_from: other/results.h5"
  for r in other moved; do
    run "$GRADFIT_BIN" eval "$work/$r/results.h5" "$work/big.h5" --out "$work/p$r.h5"
    expect_rc 0
  done
  "$PYTHON" - "$work" <<'PY' || fail "warm start with standardization"
import sys, h5py, numpy as np
w = sys.argv[1]
long, more = (h5py.File(f"{w}/{r}/results.h5")["runs/w"] for r in ("long", "more"))
for p in long["model"]:
    assert np.array_equal(long["model"][p][:], more["model"][p][:]), p
assert np.array_equal(long["train_loss"][100:], more["train_loss"][:]), "histories differ"
print("standardized: 200 epochs = 100 + 100 from init_from, weights and histories identical")
with h5py.File(w + "/pother.h5") as a, h5py.File(w + "/pmoved.h5") as b:
    dv = np.abs(a["value"][:] - b["value"][:]).max() / np.abs(a["value"][:]).max()
    dg = np.abs(a["grad"][:] - b["grad"][:]).max() / np.abs(a["grad"][:]).max()
print(f"a run re-expressed under another standardization (1 step of lr 1e-300): V {dv:.3e}, dV/dx {dg:.3e} apart")
assert dv <= 1e-12 and dg <= 1e-12
PY
  ;;
huber_matches_pytorch)
  # train.loss huber, float64 full batch, 150 epochs, on data with outliers (both branches of the loss in use):
  # on 1 and 3 ranks each run's train_loss, rel_grad_error and final weights equal PyTorch's training with
  # nn.HuberLoss(delta) to 1e-9 relative (tests/train/pytorch_reference.py), for both engines and in an ensemble,
  # and the two rank counts agree to 1e-10. Then mini-batches stopped at a mid-epoch checkpoint and resumed equal
  # the uninterrupted run bit for bit (the huber sum of the epoch in progress is in the checkpoint).
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(5)
x = rng.uniform(-2, 2, (200, 2))
grad = 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
grad[rng.random(200) < 0.1] += rng.normal(0, 20, (2,))  # outliers, far beyond delta
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, grad
PY
  cat >"$work/h.yaml" <<YAML
name: huber
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {lr: 0.02}
train: {epochs: 150, seed: 3}
sweep:
  zip:
    train.huber_delta: [0.5, 2.0, 0.5, 0.5, 1.0]
    train.seed: [3, 3, 4, 3, 3]
    train.engine: [analytic, analytic, analytic, autograd, analytic]
    train.loss: [huber, huber, huber, huber, mse]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/h.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  "$PYTHON" - "$work/r1/results.h5" "$work/r3/results.h5" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["runs"]) == sorted(b["runs"]) and len(a["runs"]) == 5
worst = 0.0
for name in a["runs"]:
    ga, gb = a["runs"][name], b["runs"][name]
    for k in ["train_loss", "rel_grad_error", "grad_norm"]:
        worst = max(worst, float((np.abs(ga[k][:] - gb[k][:]) / np.abs(ga[k][:])).max()))
    for p in ga["model"]:
        x, y = ga["model"][p][:], gb["model"][p][:]
        worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
    print(f"{name}: loss {ga.attrs['loss']}, huber_delta {ga.attrs['huber_delta']}, ensemble of {ga.attrs['ensemble']}, "
          f"final train_loss {ga.attrs['final_loss']:.4e}")
print(f"-n 1 vs -n 3: largest relative difference {worst:.2e} (histories and final weights)")
assert worst <= 1e-10
assert max(int(g.attrs["ensemble"]) for g in a["runs"].values()) > 1, "no ensemble"
ids = {g.attrs["id"] for g in a["runs"].values()}
assert len(ids) == 5
PY
  cat >"$work/m.yaml" <<YAML
name: hm
data: {target: file, path: data.h5}
model: {widths: [32, 32], activation: tanh, dtype: float64}
optimizer: {lr: 0.01}
checkpoint: {every_epochs: 1, every_seconds: 0}
train: {epochs: 400, seed: 3, loss: huber, huber_delta: 0.5, batch_size: 30, val_fraction: 0.2}
YAML
  run mpi 2 "$GRADFIT_BIN" --out "$work/ref" "$work/m.yaml"
  expect_rc 0
  stop_at_first_checkpoint "$work/stop" "$work/m.yaml"
  expect_rc 75
  run mpi 2 "$GRADFIT_BIN" --out "$work/stop" "$work/m.yaml"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the resumed huber run differs"
import sys, h5py, numpy as np
w = sys.argv[1]
a, b = (h5py.File(f"{w}/{r}/results.h5")["runs/hm"] for r in ("ref", "stop"))
for k in ("train_loss", "rel_grad_error", "val_loss", "grad_norm"):
    assert np.array_equal(a[k][:], b[k][:]), k
for p in a["model"]:
    assert np.array_equal(a["model"][p][:], b["model"][p][:]), p
print("huber, mini-batches: stopped at a checkpoint and resumed, histories and weights bit for bit")
PY
  ;;
weights_match_pytorch)
  # Per-sample weights from the data file's `weight` dataset, float64 full batch, 150 epochs: on 1 and 3 ranks, mse
  # and huber, both engines and an ensemble, each run's train_loss, rel_grad_error and final weights equal PyTorch's
  # weighted mean (tests/train/pytorch_reference.py) to 1e-9 relative, and the rank counts agree to 1e-10; with
  # mini-batches, validation and a value term 1 and 3 ranks agree too; a negative weight is one clear error.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(8)
x = rng.uniform(-2, 2, (200, 2))
grad = 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
grad[rng.random(200) < 0.1] += rng.normal(0, 20, (2,))
w = rng.uniform(0, 3, 200)
w[rng.random(200) < 0.1] = 0  # rows that do not count
with h5py.File(sys.argv[1] + "/data.h5", "w") as f:
    f["x"], f["grad"], f["weight"], f["value"] = x, grad, w, (x * x).sum(1)
w[5] = -1
with h5py.File(sys.argv[1] + "/bad.h5", "w") as f:
    f["x"], f["grad"], f["weight"], f["value"] = x, grad, w, (x * x).sum(1)
PY
  cat >"$work/w.yaml" <<YAML
name: weighted
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {lr: 0.02}
train: {epochs: 150, seed: 3, huber_delta: 0.5}
sweep:
  zip:
    train.loss: [mse, huber, huber, huber, mse]
    train.seed: [3, 3, 4, 3, 3]
    train.engine: [analytic, analytic, analytic, autograd, autograd]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/w.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  cat >"$work/m.yaml" <<YAML
name: wm
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.01}
train: {epochs: 40, seed: 3, loss: huber, batch_size: 32, val_fraction: 0.2, value_weight: 0.1}
YAML
  for n in 1 3; do run mpi $n "$GRADFIT_BIN" --out "$work/m$n" "$work/m.yaml"; expect_rc 0; done
  "$PYTHON" - "$work" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
w = sys.argv[1]
worst = 0.0
for r in ("r", "m"):
    a, b = h5py.File(f"{w}/{r}1/results.h5", "r"), h5py.File(f"{w}/{r}3/results.h5", "r")
    for name in a["runs"]:
        ga, gb = a["runs"][name], b["runs"][name]
        for k in ["train_loss", "rel_grad_error", "val_loss", "grad_norm"]:
            if np.isnan(ga[k][:]).all():
                continue
            worst = max(worst, float((np.abs(ga[k][:] - gb[k][:]) / np.abs(ga[k][:])).max()))
        for p in ga["model"]:
            x, y = ga["model"][p][:], gb["model"][p][:]
            worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
        for k in ["final_loss", "final_rel_grad_error"]:
            worst = max(worst, abs(ga.attrs[k] - gb.attrs[k]) / abs(ga.attrs[k]))
print(f"-n 1 vs -n 3 (full batch sweep; mini-batches with validation and values): largest relative difference {worst:.2e}")
assert worst <= 1e-10
ens = h5py.File(f"{w}/r1/results.h5", "r")["runs"]
assert max(int(g.attrs["ensemble"]) for g in ens.values()) > 1, "no ensemble"
assert all(int(g.attrs["weighted"]) == 1 for g in ens.values())
PY
  # With data.standardize too: the final metrics (user units) are the weighted ones of eval's predictions.
  sed 's/path: data.h5}/path: data.h5, standardize: true}/; s/val_fraction: 0.2, //' "$work/m.yaml" >"$work/s.yaml"
  run mpi 3 "$GRADFIT_BIN" --out "$work/s" "$work/s.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" eval "$work/s/results.h5" "$work/data.h5" --out "$work/ps.h5"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "standardized weighted final metrics"
import sys, h5py, numpy as np
w = sys.argv[1]
g = h5py.File(w + "/s/results.h5")["runs/wm"]
with h5py.File(w + "/data.h5") as d, h5py.File(w + "/ps.h5") as p:
    S, wt, pg = d["grad"][:], d["weight"][:], p["grad"][:]
rel = np.sqrt((wt[:, None] * (pg - S) ** 2).sum() / (wt[:, None] * S ** 2).sum())
print(f"standardized, weighted: final_rel_grad_error {g.attrs['final_rel_grad_error']:.9e}, from eval's predictions {rel:.9e}")
assert abs(rel - g.attrs["final_rel_grad_error"]) <= 1e-10 * rel
PY
  sed 's/data.h5/bad.h5/' "$work/m.yaml" >"$work/bad.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" "$work/bad.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*bad\.h5: dataset 'weight' has a negative number, NaN or Inf in row 5$"
  ;;
features_match_pytorch)
  # model.features, float64: each Adam run's histories and final weights equal PyTorch's training of the same MLP
  # on the same phi(x) (tests/train/pytorch_reference.py) to 1e-9, on 1 and 3 ranks, both engines (the analytic
  # runs as an ensemble), full batch and in gradfit_dist's mini-batches, with and without data.standardize (then
  # on phi's scaled features); the rank counts agree to 1e-10, L-BFGS included. (L-BFGS against
  # PyTorch is left to cli.lbfgs_matches_pytorch: on the molecule its first line search fits a cubic to losses
  # 2e-8 apart, where a last-bit difference of the summed loss moves the next trial step by 30 %.) eval is
  # invariant to rotating and translating the molecules, and to shifting an angle by its period, to 1e-12;
  # export's gradient equals eval's to 1e-12.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
rng = np.random.default_rng(5)
# 4 atoms, V = sum over pairs of (d - 1.5)^2 / d, a function of the distances alone.
base = np.array([[0, 0, 0], [1.5, 0, 0], [0.5, 1.3, 0], [0.5, 0.5, 1.2]])
x = base[None] + 0.15 * rng.normal(size=(300, 4, 3))
grad = np.zeros_like(x)
for i in range(4):
    for j in range(i + 1, 4):
        r = x[:, i] - x[:, j]
        d = np.linalg.norm(r, axis=1, keepdims=True)
        dv = 2 * (d - 1.5) / d - (d - 1.5) ** 2 / d ** 2
        grad[:, i] += dv * r / d
        grad[:, j] -= dv * r / d
with h5py.File(sys.argv[1] + "/molecule.h5", "w") as f:
    f["x"], f["grad"] = x.reshape(300, 12), grad.reshape(300, 12)
# An angle and a length: V = sin(t) y + y^2 / 2.
t = rng.uniform(-4, 4, (300, 2))
with h5py.File(sys.argv[1] + "/angles.h5", "w") as f:
    f["x"], f["grad"] = t, np.stack([np.cos(t[:, 0]) * t[:, 1], np.sin(t[:, 0]) + t[:, 1]], 1)
PY
  # train_like_pytorch SWEEP [--run NAME]...: $work/SWEEP.yaml on $n ranks, its runs (or those named) as PyTorch's
  # on $work/$kind.h5.
  train_like_pytorch() {
    local sweep=$1
    shift
    run mpi "$n" "$GRADFIT_BIN" --out "$work/$sweep$n" "$work/$sweep.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/$sweep$n/results.h5" "$work/$kind.h5" --tol 1e-9 "$@" ||
      fail "$sweep: -n $n differs from PyTorch"
  }
  for kind in molecule angles; do
    if [ $kind = molecule ]; then features='features: inverse_distances'; else
      features='features: periodic, periods: [6.283185307179586, 0]'; fi
    cat >"$work/$kind.yaml" <<YAML
name: $kind
data: {target: file, path: $kind.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64, $features}
train: {epochs: 60, seed: 2}
sweep:
  grid: {train.engine: [analytic, autograd]}
  zip: {optimizer.name: [adam, adam, lbfgs], optimizer.lr: [0.01, 0.003, 1]}
YAML
    cat >"$work/${kind}_std.yaml" <<YAML
name: ${kind}_std
data: {target: file, path: $kind.h5, standardize: true}
model: {widths: [16, 16], activation: softplus, dtype: float64, $features}
train: {epochs: 60, seed: 2}
sweep:
  grid: {train.engine: [analytic, autograd], optimizer.lr: [0.01, 0.003]}
YAML
    cat >"$work/${kind}_mb.yaml" <<YAML
name: ${kind}_mb
data: {target: file, path: $kind.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64, $features}
train: {epochs: 20, seed: 2, batch_size: 64}
sweep:
  grid: {train.engine: [analytic, autograd], optimizer.lr: [0.01, 0.003]}
YAML
    for n in 1 3; do
      train_like_pytorch "$kind" --run engine=analytic,name=adam,lr=0.01 --run engine=analytic,name=adam,lr=0.003 \
        --run engine=autograd,name=adam,lr=0.01 --run engine=autograd,name=adam,lr=0.003
      train_like_pytorch "${kind}_std"
      train_like_pytorch "${kind}_mb"
    done
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${kind}_std1/results.h5" "$work/${kind}_std3/results.h5" \
      --tol 1e-10 || fail "$kind, standardized: -n 1 and -n 3 differ"
    run mpi 2 "$GRADFIT_BIN" export "$work/${kind}_std3/results.h5" --run best --out "$work/${kind}_std.pt"
    expect_rc 0
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${kind}1/results.h5" "$work/${kind}3/results.h5" --tol 1e-10 ||
      fail "$kind: -n 1 and -n 3 differ"
    "$PYTHON" tests/cli/compare_rank_counts.py "$work/${kind}_mb1/results.h5" "$work/${kind}_mb3/results.h5" \
      --tol 1e-10 || fail "$kind: mini-batches, -n 1 and -n 3 differ"
    run mpi 2 "$GRADFIT_BIN" export "$work/${kind}3/results.h5" --run best --out "$work/$kind.pt"
    expect_rc 0
  done
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the moved points"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/molecule.h5") as f:
    x = f["x"][:].reshape(-1, 4, 3)
c, s = np.cos(0.9), np.sin(0.9)
rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
with h5py.File(w + "/molecule_moved.h5", "w") as f:
    f["x"] = (x @ rotation.T + np.array([2.0, -1.0, 0.5])).reshape(-1, 12)
np.save(w + "/rotation.npy", rotation)
with h5py.File(w + "/angles.h5") as f:
    t = f["x"][:]
with h5py.File(w + "/angles_moved.h5", "w") as f:
    f["x"] = t + np.array([2 * np.pi, 0])
PY
  for kind in molecule angles; do
    for points in $kind ${kind}_moved; do
      for fit in $kind ${kind}_std; do
        run mpi 2 "$GRADFIT_BIN" eval "$work/${fit}3/results.h5" "$work/$points.h5" --run best \
          --out "$work/p_${fit}_$points.h5"
        expect_rc 0
      done
    done
  done
  "$PYTHON" - "$work" <<'PY' || fail "invariance or export"
import sys, h5py, numpy as np, torch
w = sys.argv[1]
rotation = np.load(w + "/rotation.npy")
for kind in ("molecule", "angles"):
  for fit in (kind, kind + "_std"):
    with h5py.File(f"{w}/p_{fit}_{kind}.h5") as a, h5py.File(f"{w}/p_{fit}_{kind}_moved.h5") as b, \
            h5py.File(f"{w}/{kind}.h5") as d:
        v, g, v_moved, g_moved, x = a["value"][:], a["grad"][:], b["value"][:], b["grad"][:], d["x"][:]
    if kind == "molecule":  # the moved gradient, turned back
        g_moved = (g_moved.reshape(-1, 4, 3) @ rotation).reshape(-1, 12)
    dv = np.abs(v_moved - v).max() / np.abs(v).max()
    dg = np.linalg.norm(g_moved - g) / np.linalg.norm(g)
    module = torch.jit.load(f"{w}/{fit}.pt")
    with torch.no_grad():
        g_export = module.gradient(torch.from_numpy(x)).numpy()
        v_export = module.forward(torch.from_numpy(x)).numpy()
    de = max(np.linalg.norm(g_export - g) / np.linalg.norm(g), np.abs(v_export - v).max() / np.abs(v).max())
    print(f"{fit}: moved points change V by {dv:.2e}, dV/dx by {dg:.2e} (relative); export vs eval {de:.2e}")
    assert dv <= 1e-12 and dg <= 1e-12 and de <= 1e-12, fit
PY
  # --dry-run shows the features; a warm start from a run without them is one line naming both.
  run "$GRADFIT_BIN" --dry-run "$work/molecule.yaml"
  expect_rc 0
  expect_in out "^1 +[0-9a-f]{12} +inverse_distances\(12\)-6-16-16-1 +softplus "
  printf 'data: {target: file, path: molecule.h5}\nmodel: {widths: [16, 16], dtype: float64}\n%s\n' \
    'train: {epochs: 2, init_from: "molecule1/results.h5#engine=analytic,name=adam,lr=0.01"}' >"$work/warm.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/warm" "$work/warm.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*init_from .* is inverse_distances\(12\)-6-16-16-1, this run 12-16-16-1 "
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  # Two atoms at one place (row 250, on the second rank's shard): one line naming the file and the row.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py
with h5py.File(sys.argv[1] + "/molecule.h5") as f, h5py.File(sys.argv[1] + "/clash.h5", "w") as g:
    x = f["x"][:]
    x[250, 6:9] = x[250, 3:6]
    g["x"], g["grad"] = x, f["grad"][:]
PY
  sed 's/path: molecule.h5/path: clash.h5/' "$work/molecule.yaml" >"$work/clash.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/clash" "$work/clash.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: run .*clash.h5: row 250: atoms 1 and 2 are at the same place \\(model.features"
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line" ;;
eval_matches_pytorch)
  # eval under 1 and 3 ranks writes the same PRED.h5, equal to PyTorch's own evaluation of the saved weights.
  train_for_eval "$work/fit"
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" eval "$work/fit/results.h5" "$work/fit/pts.h5" --run dtype=float64 --out "$work/p$n.h5"
    expect_rc 0
    expect_in out "^relative gradient error"
    expect_in out "V is defined up to a constant"
  done
  "$PYTHON" - "$work" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/p1.h5") as a, h5py.File(sys.argv[1] + "/p3.h5") as b:
    for k in ("value", "grad"):
        d = np.abs(a[k][:] - b[k][:]).max()
        print(f"eval -n 1 vs -n 3: {k} max abs difference {d:.3e}")
        assert d == 0, k
PY
  check_against_torch "$work/fit/results.h5" dtype=float64 "$work/p3.h5" "$work/fit/pts.h5" 1e-12
  # The metrics printed equal those computed from the predictions.
  "$PYTHON" - "$work" "$(awk '/^relative gradient error/ {print $NF}' "$work/out")" <<'PY' || fail "metrics"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/p3.h5") as p, h5py.File(sys.argv[1] + "/fit/pts.h5") as d:
    rel = np.linalg.norm(p["grad"][:] - d["grad"][:]) / np.linalg.norm(d["grad"][:])
print(f"printed relative error {sys.argv[2]}, from PRED.h5 {rel:.6e}")
assert abs(float(sys.argv[2]) - rel) <= 1e-6 * rel
PY
  # float32, and a file without grad (predictions only) chosen by id
  run mpi 2 "$GRADFIT_BIN" eval "$work/fit/results.h5#dtype=float32" "$work/fit/nograd.h5" --out "$work/p32.h5"
  expect_rc 0
  expect_in out "predictions only"
  check_against_torch "$work/fit/results.h5" dtype=float32 "$work/p32.h5" "$work/fit/pts.h5" 1e-5 ;;
export_matches_eval)
  # export's TorchScript module, loaded by torch.jit.load, gives eval's V and dV/dx (also under no_grad).
  train_for_eval "$work/fit"
  run mpi 2 "$GRADFIT_BIN" eval "$work/fit/results.h5" "$work/fit/pts.h5" --run best --out "$work/pred.h5"
  expect_rc 0
  best=$(grep -Eo "run 'dtype=float[0-9]+'" "$work/out" | grep -Eo "float[0-9]+")
  run mpi 2 "$GRADFIT_BIN" export "$work/fit/results.h5" --run best --out "$work/model.pt"
  expect_rc 0
  expect_in out "wrote .*model.pt"
  tol=1e-12; [ "$best" = float64 ] || tol=1e-5
  "$PYTHON" - "$work" "$tol" <<'PY' || fail "export differs from eval"
import sys, h5py, numpy as np, torch
m = torch.jit.load(sys.argv[1] + "/model.pt")
with h5py.File(sys.argv[1] + "/fit/pts.h5") as f:
    x = torch.from_numpy(f["x"][:])
with h5py.File(sys.argv[1] + "/pred.h5") as f:
    pv, pg = f["value"][:], f["grad"][:]
with torch.no_grad():
    v, g = m(x).double().numpy(), m.gradient(x).double().numpy()
dv, dg = np.abs(v - pv).max() / np.abs(pv).max(), np.abs(g - pg).max() / np.abs(pg).max()
print(f"export ({m.dtype}) vs eval: value {dv:.3e}, grad {dg:.3e} (tolerance {sys.argv[2]})")
assert v.shape == pv.shape and g.shape == pg.shape and dv <= float(sys.argv[2]) and dg <= float(sys.argv[2])
PY
  # and the float64 run always, to 1e-12
  run "$GRADFIT_BIN" eval "$work/fit/results.h5" "$work/fit/pts.h5" --run dtype=float64 --out "$work/pred64.h5"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/fit/results.h5#dtype=float64" --out "$work/model64.pt"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "float64 export differs from eval"
import sys, h5py, numpy as np, torch
m = torch.jit.load(sys.argv[1] + "/model64.pt")
with h5py.File(sys.argv[1] + "/fit/pts.h5") as f:
    x = torch.from_numpy(f["x"][:])
with h5py.File(sys.argv[1] + "/pred64.h5") as f:
    pv, pg = f["value"][:], f["grad"][:]
v, g = m(x).detach().numpy(), m.gradient(x).numpy()
dv, dg = np.abs(v - pv).max() / np.abs(pv).max(), np.abs(g - pg).max() / np.abs(pg).max()
print(f"export (float64) vs eval: value {dv:.3e}, grad {dg:.3e}")
assert dv <= 1e-12 and dg <= 1e-12
PY
  ;;
eval_errors)
  # Each bad input: one error line naming it, exit code 1, and no PRED.h5 (nor a temporary) left behind.
  train_for_eval "$work/fit"
  "$PYTHON" - "$work/n3.h5" <<'PY' || fail "cannot write n3.h5"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["x"] = np.zeros((10, 3))
PY
  mkdir "$work/outdir"
  check_eval_error() {
    label=$1; shift
    timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" eval "$@" --out "$work/outdir/pred.h5"
    expect_one_error "$pattern"
    [ -z "$(ls "$work/outdir")" ] || fail "$label: left $(ls "$work/outdir")"
  }
  pattern="no run named or with id 'nope' \\(runs: dtype=float32, dtype=float64; choose with --run"
  check_eval_error unknown_run "$work/fit/results.h5" "$work/fit/pts.h5" --run nope
  pattern="holds 2 runs; say which"
  check_eval_error no_run "$work/fit/results.h5" "$work/fit/pts.h5"
  pattern="n3.h5: dataset 'x' has n = 3 columns, but run 'dtype=float64'.* takes n = 2 inputs"
  check_eval_error wrong_n "$work/fit/results.h5" "$work/n3.h5" --run dtype=float64
  pattern="absent.h5: no such file"
  check_eval_error missing_results "$work/absent.h5" "$work/fit/pts.h5"
  pattern="cannot open HDF5 file '.*absent_data.h5'"
  check_eval_error missing_data "$work/fit/results.h5" "$work/absent_data.h5" --run dtype=float64
  timed_run "$GRADFIT_BIN" export "$work/fit/results.h5" --run nope --out "$work/outdir/model.pt"
  expect_one_error "no run named or with id 'nope'"
  [ -z "$(ls "$work/outdir")" ] || fail "export left $(ls "$work/outdir")" ;;
output_lock)
  # One invocation at a time per output folder: a second one on a folder in use ends at once with one error line
  # naming the holder and touches nothing; the first finishes and removes its lock. A lock whose process is gone is
  # taken over; one from another host is not.
  cat >"$work/long.yaml" <<YAML
data: {target: gaussian_wells, dim: 3, sampling: uniform, samples: 4000, well_width: 2.0}
model: {widths: [32, 32], activation: softplus, dtype: float64}
train: {epochs: 2000, batch_size: 500}
YAML
  mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/long.yaml" </dev/null >"$work/first" 2>&1 &
  first=$!
  wait_for_file "$work/r" .lock || fail "no lock appeared"
  holder=$(cat "$work/r/.lock")
  label="second invocation"
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/r" "$work/long.yaml"
  kill -0 "$first" 2>/dev/null || fail "the first job ended before the second was checked: $(cat "$work/first")"
  expect_one_error "^gradfit_dist: error: .*/r is in use by gradfit_dist pid [0-9]+ on host [^ ]+ since [0-9T:Z-]+; wait for it to finish, or remove .*/r/\.lock if that job is gone$"
  refusal=$elapsed
  # What starting and stopping costs here (mpirun, LibTorch, 2 ranks beside the first job): a sweep file error.
  printf 'train: {epohcs: 1}\n' >"$work/typo.yaml"
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/t" "$work/typo.yaml"
  echo "refused in $refusal s; a sweep file error takes $elapsed s"
  awk -v r="$refusal" -v t="$elapsed" 'BEGIN {exit !(r <= t + 3)}' || fail "the refusal took $refusal s"
  [ "$(cat "$work/r/.lock")" = "$holder" ] || fail "the lock changed"
  [ ! -e "$work/r/outcome" ] || fail "the refused job wrote an outcome"
  wait "$first"; rc=$?
  echo "first job: exit code $rc"; tail -2 "$work/first"
  expect_rc 0
  [ ! -e "$work/r/.lock" ] || fail "the lock outlived its job"
  [ "$(cat "$work/r/outcome")" = complete ] || fail "outcome: $(cat "$work/r/outcome")"
  # A stale lock: its process is gone.
  sleep 0 & dead=$!; wait "$dead"
  mkdir "$work/s"
  printf 'host=%s\npid=%s\nstarted=2026-01-01T00:00:00Z\n' "$(uname -n)" "$dead" >"$work/s/.lock"
  run mpi 2 "$GRADFIT_BIN" --out "$work/s" --set train.epochs=3 "$work/long.yaml"
  expect_rc 0
  expect_in out "^taking over the stale lock .*/s/\.lock of gradfit_dist pid $dead on host $(uname -n) \(that process is gone\)$"
  [ ! -e "$work/s/.lock" ] && [ -e "$work/s/results.h5" ] || fail "after the stale lock"
  # A lock from another host cannot be checked: refused.
  mkdir "$work/o"
  printf 'host=elsewhere\npid=1\nstarted=2026-01-01T00:00:00Z\n' >"$work/o/.lock"
  label="other host"
  timed_run "$GRADFIT_BIN" --out "$work/o" --set train.epochs=3 "$work/long.yaml"
  expect_one_error "^gradfit_dist: error: .*/o is in use by gradfit_dist pid 1 on host elsewhere since 2026-01-01T00:00:00Z; wait"
  [ "$(ls -A "$work/o")" = .lock ] || fail "the refused job touched the folder: $(ls -A "$work/o")" ;;
nothing_before_valid)
  # A data file with a NaN: the one-run job fails with one error line and leaves no output folder behind; in a
  # folder that was there, nothing but the outcome.
  write_data_file "$work/bad.h5" 3
  printf 'data: {target: file, path: bad.h5}\ntrain: {epochs: 5}\n' >"$work/nan.yaml"
  label="new folder"
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/r" "$work/nan.yaml"
  expect_one_error "bad\.h5: dataset 'grad' has NaN or Inf in row 3"
  [ ! -e "$work/r" ] || fail "left $(find "$work/r")"
  mkdir "$work/e"
  touch "$work/e/notes.txt"
  label="existing folder"
  timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/e" "$work/nan.yaml"
  expect_one_error "bad\.h5: dataset 'grad' has NaN or Inf in row 3"
  [ "$(ls -A "$work/e" | tr '\n' ' ')" = "notes.txt outcome " ] || fail "left $(ls -A "$work/e")"
  grep -q "^failed: run nan: .*bad\\.h5: dataset 'grad' has NaN or Inf in row 3" "$work/e/outcome" || fail "outcome: $(cat "$work/e/outcome")" ;;
absurd_sizes)
  # Sizes far beyond any node: one line naming the key (or the memory), exit code 1 within seconds, on 2 ranks,
  # and no output folder. The last three are within the bounds but cannot fit this node: the memory estimate
  # refuses them, for a data file from its layout (a declared 4e9 × 1000 dataset with no storage written).
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data files"
import sys, h5py
with h5py.File(sys.argv[1] + "/huge.h5", "w") as f:
    for name in ("x", "grad"):
        f.create_dataset(name, shape=(4_000_000_000, 1000), dtype="f8", chunks=(1024, 100))
with h5py.File(sys.argv[1] + "/beyond.h5", "w") as f:
    for name in ("x", "grad"):
        f.create_dataset(name, shape=(2**40, 2), dtype="f8", chunks=(1024, 2))
PY
  # The tail of a memory refusal: the other parts, and this node's memory shared by the 2 ranks.
  size='[0-9.]+ [kMGTPE]?B'
  rest="buffers $size, model $size, chunks $size\\); this node has $size for 2 ranks \\($size each\\)$"
  k=0
  while IFS='|' read -r label yaml pattern; do
    k=$((k + 1))
    printf '%b' "$yaml" >"$work/a$k.yaml"
    timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/o$k" "$work/a$k.yaml"
    expect_one_error "$pattern"
    [ ! -e "$work/o$k" ] || fail "$label: left $(find "$work/o$k")"
  done <<CASES
samples|data: {target: gaussian_wells, sampling: uniform, samples: 1000000000000}\n|^gradfit_dist: error: .*/a1\.yaml:1:60: key 'data\.samples': must be at most 1e10 \(got 1000000000000\)$
wells|data: {target: gaussian_wells, wells: 1000000000000}\n|^gradfit_dist: error: .*/a2\.yaml:1:39: key 'data\.wells': must be at most 1e6 \(got 1000000000000\)$
widths|data: {target: quadratic, P: [[1, 0], [0, 1]]}\nmodel: {widths: [1000000000]}\n|^gradfit_dist: error: .*/a3\.yaml:2:17: key 'model\.widths': every width must be at most 1e6 \(got 1000000000\)$
dim|data: {target: gaussian_wells, dim: 1000000000000}\n|^gradfit_dist: error: .*/a4\.yaml:1:37: key 'data\.dim': must be at most 1e6 \(got 1000000000000\)$
memory|name: mem\ndata: {target: gaussian_wells, sampling: uniform, dim: 1000, samples: 10000000000}\n|^gradfit_dist: error: run mem needs ~40 TB of memory per rank \(data shard 40 TB, $rest
file|name: file\ndata: {target: file, path: huge.h5}\n|^gradfit_dist: error: run file needs ~16 TB of memory per rank \(data shard 16 TB, $rest
beyond|name: beyond\ndata: {target: file, path: beyond.h5}\n|^gradfit_dist: error: .*/beyond\.h5: dataset 'x' is 1099511627776 × 2: a run takes at most 10000000000 rows and 1000000 columns \(run beyond\)$
CASES
  ;;
job_outcome)
  # OUT/outcome says how the job ended: complete, interrupted (SIGTERM), failed: <error> (a group's bad data).
  printf 'data: {target: quadratic, P: [[1, 0], [0, 1]]}\ntrain: {epochs: 3}\n' >"$work/tiny.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/c" "$work/tiny.yaml"
  expect_rc 0
  echo "outcome: $(cat "$work/c/outcome")"
  [ "$(cat "$work/c/outcome")" = complete ] || fail "outcome after a complete job"
  stop_at_first_checkpoint "$work/i"
  expect_rc 75
  echo "outcome: $(cat "$work/i/outcome")"
  [ "$(cat "$work/i/outcome")" = interrupted ] || fail "outcome after a SIGTERM"
  [ ! -e "$work/i/.lock" ] || fail "the lock outlived the stopped job"
  write_data_file "$work/good1.h5"
  write_data_file "$work/good2.h5"
  write_data_file "$work/bad.h5" 3
  cat >"$work/nan.yaml" <<YAML
name: nan
ranks_per_run: 1
ensemble_size: 1
data: {target: file, path: good1.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 2000}
sweep:
  grid: {data.path: [good1.h5, bad.h5, good2.h5]}
YAML
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/f" "$work/nan.yaml"
  expect_rc 1
  echo "outcome: $(cat "$work/f/outcome")"
  [ "$(cat "$work/f/outcome")" = "failed: $(sed -n 's/^gradfit_dist: error: //p' "$work/err")" ] ||
    fail "outcome after a failure"
  grep -q "^failed: run path=bad\.h5: .*NaN or Inf in row 3$" "$work/f/outcome" || fail "outcome names the run"
  [ ! -e "$work/f/.lock" ] || fail "the lock outlived the failed job" ;;
progress_auto_file)
  # --progress auto (the default) under mpirun with the output in a file (where the ranks' stdout is a
  # pseudo-terminal): plain lines, no escape codes. The runs last a few seconds, longer than the live line's 1 s.
  cat >"$work/s.yaml" <<YAML
name: wells
ranks_per_run: 1
data: {target: gaussian_wells, dim: 3, sampling: uniform, samples: 4000, well_width: 2.0}
model: {widths: [32, 32], activation: softplus, dtype: float64}
train: {epochs: 600, batch_size: 500}
sweep:
  grid: {optimizer.lr: [0.01, 0.02]}
YAML
  mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/s.yaml" </dev/null >"$work/out" 2>&1; rc=$?
  cat "$work/out"
  expect_rc 0
  ! grep -q $'\x1b' "$work/out" || fail "escape codes in the output file"
  ! grep -q $'\r' "$work/out" || fail "carriage returns in the output file" ;;
schedules_match_pytorch)
  # Schedules, AdamW and clipping, float64 full batch, 150 epochs: on 1 and on 3 ranks each run's train_loss and
  # lr histories and final weights equal PyTorch's training of the same model (tests/train/pytorch_reference.py:
  # torch.optim and torch.optim.lr_scheduler) to 1e-9 relative, and the two rank counts agree to 1e-10.
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(-2, 2, (200, 2))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
PY
  cat >"$work/s.yaml" <<YAML
name: sched
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {lr: 0.02, lr_final: 0.0005, warmup_epochs: 10, plateau_patience: 3, plateau_factor: 0.5}
train: {epochs: 150, seed: 3}
sweep:
  zip:
    optimizer.schedule: [exponential, cosine, plateau, cosine, constant, constant, exponential]
    optimizer.name: [adam, adam, adam, adam, adamw, adam, sgd]
    optimizer.weight_decay: [0, 0, 0, 0, 0.2, 0, 0]
    optimizer.max_grad_norm: [0, 0, 0, 0, 0, 1.5, 2.0]
    optimizer.momentum: [0, 0, 0, 0, 0, 0, 0.9]
    train.seed: [3, 3, 3, 4, 3, 3, 3]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/s.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  # /summary names each run's schedule and the rate it ends at, beside the rate it starts at.
  "$PYTHON" - "$work/r1/results.h5" <<'PY' || fail "summary schedule columns"
import sys, h5py
s = h5py.File(sys.argv[1], "r")["summary"][:]
got = [(v.decode(), float(f)) for v, f in zip(s["schedule"], s["lr_final"])]
assert sorted(set(v for v, _ in got)) == ["constant", "cosine", "exponential", "plateau"], got
assert all(f == 0.0005 for _, f in got), got
PY
  "$PYTHON" - "$work/r1/results.h5" "$work/r3/results.h5" <<'PY' || fail "-n 1 and -n 3 differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["runs"]) == sorted(b["runs"]) and len(a["runs"]) == 7
worst = 0.0
for name in a["runs"]:
    ga, gb = a["runs"][name], b["runs"][name]
    for k in ["train_loss", "rel_grad_error", "grad_norm", "lr"]:
        worst = max(worst, float((np.abs(ga[k][:] - gb[k][:]) / np.abs(ga[k][:])).max()))
    for p in ga["model"]:
        x, y = ga["model"][p][:], gb["model"][p][:]
        worst = max(worst, float(np.abs(x - y).max() / np.abs(x).max()))
    lr, norms = ga["lr"][:], ga["grad_norm"][:]
    s = ga.attrs
    # What each option must have done for the comparison to mean something.
    if s["schedule"] in ("exponential", "cosine", "plateau"):
        assert len(set(lr)) > 2 and lr[-1] < lr.max() / 4, (name, lr.max(), lr[-1])
    if s["schedule"] == "plateau":
        assert len(set(lr)) < 20, (name, "plateau reduced at", len(set(lr)) - 1, "epochs")
    if s["max_grad_norm"] > 0:
        assert (norms > s["max_grad_norm"]).sum() > 10 and (norms < s["max_grad_norm"]).sum() > 10, name
    print(f"{name}: lr {lr[0]:.4g} -> {lr[-1]:.4g} ({len(set(lr))} rates), ensemble of {s['ensemble']}, "
          f"gradient norm above max_grad_norm in {(norms > s['max_grad_norm']).sum() if s['max_grad_norm'] else 0} epochs")
print(f"-n 1 vs -n 3: largest relative difference {worst:.2e} (histories and final weights)")
assert worst <= 1e-10
assert max(int(g.attrs["ensemble"]) for g in a["runs"].values()) > 1, "no ensemble"
PY
  # Mini-batches with validation (plateau on the validation loss), on 3 ranks: each lr history is the one PyTorch's
  # scheduler gives when fed the losses the run recorded, bit for bit.
  cat >"$work/v.yaml" <<YAML
name: val
data: {target: gaussian_wells, dim: 2, sampling: uniform, samples: 400, well_width: 1.5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.02, plateau_patience: 2, plateau_factor: 0.5, warmup_epochs: 5}
train: {epochs: 120, batch_size: 64, val_fraction: 0.25}
sweep:
  grid: {optimizer.schedule: [plateau, cosine, exponential]}
YAML
  run mpi 3 "$GRADFIT_BIN" --out "$work/v" "$work/v.yaml"
  expect_rc 0
  "$PYTHON" tests/train/pytorch_reference.py "$work/v/results.h5" --schedule-only >"$work/replay" ||
    { cat "$work/replay"; fail "a schedule differs from PyTorch's"; }
  cat "$work/replay"
  grep -Eq "plateau on val_loss, 120 epochs, ([3-9]|[1-9][0-9]) rates" "$work/replay" || fail "plateau never reduced" ;;
lbfgs_matches_pytorch)
  # L-BFGS, float64 full batch, 40 epochs (one iteration each, strong-Wolfe line search): on 1 and on 3 ranks each
  # run's train_loss and lr histories, function evaluations and final weights equal PyTorch's
  # torch.optim.LBFGS(max_iter=1, line_search_fn='strong_wolfe', tolerance_grad, tolerance_change) stepped once per
  # epoch (tests/train/pytorch_reference.py) to 1e-9 relative, and the two rank counts agree to 1e-10. Two runs
  # raise a tolerance until it stops their steps partway.
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(-2, 2, (600, 2))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
PY
  cat >"$work/l.yaml" <<YAML
name: lbfgs
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
optimizer: {name: lbfgs, lr: 1}
train: {epochs: 40, seed: 3}
sweep:
  zip:
    optimizer.history_size: [100, 4, 10, 100, 100]
    optimizer.schedule: [constant, constant, cosine, constant, constant]
    optimizer.lr: [1, 1, 0.5, 1, 1]
    model.activation: [softplus, tanh, softplus, softplus, softplus]
    optimizer.tolerance_change: [1e-9, 1e-9, 1e-9, 1e-2, 1e-9]
    optimizer.tolerance_grad: [1e-7, 1e-7, 1e-7, 1e-7, 0.1]
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/l.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
  done
  # 1 against 3 ranks (600 rows in blocks of 38: 228, 190 and 182 rows per rank): L-BFGS sums block by block,
  # compensated, so the histories (the gradient norm near the minimum too) and weights agree to the last bit as a
  # rule; plain sums in another grouping differ by ~1e-16, which the line search amplifies to ~6e-10 in the
  # gradient norm of the last epochs.
  "$PYTHON" tests/cli/compare_rank_counts.py "$work/r1/results.h5" "$work/r3/results.h5" --tol 1e-10 ||
    fail "-n 1 and -n 3 differ"
  "$PYTHON" - "$work/r1/results.h5" <<'PY' || fail "the runs do not test what they should"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert len(f["runs"]) == 5
for name, g in f["runs"].items():
    s, loss = g.attrs, g["train_loss"][:]
    # What the comparison needs to mean something: line searches that evaluate more than once, a falling loss.
    assert s["function_evaluations"] > len(loss) and loss[-1] < loss[0] / 20, (name, s["function_evaluations"], loss)
    assert s["ensemble"] == 1, name
    # The runs with a tolerance raised stop stepping within the 40 epochs (the loss stays put); the others do not.
    stalled = int((loss[1:] == loss[:-1]).sum())
    assert (stalled >= 10) == (s["tolerance_change"] > 1e-9 or s["tolerance_grad"] > 1e-7), (name, stalled)
    print(f"{name}: loss {loss[0]:.4g} -> {loss[-1]:.4g} in {len(loss)} epochs, "
          f"{s['function_evaluations']} function evaluations, {stalled} epochs without a step")
PY
  ;;
ema_matches_pytorch)
  # The moving average of the weights (train.ema_decay), float64 full batch, 120 epochs (L-BFGS: 40): on 1 and on 3
  # ranks each run's train_loss history, its saved weights (the average's) and their final_loss equal PyTorch's
  # AveragedModel(avg_fn=decay * e + (1 - decay) * w) updated after every step (tests/train/pytorch_reference.py)
  # to 1e-9 relative, two of them trained as an ensemble; with mini-batches and validation (the average judged,
  # early stopping on it) the two rank counts agree to 1e-10, as they do on the full-batch runs.
  "$PYTHON" - "$work/data.h5" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
x = np.random.default_rng(3).uniform(-2, 2, (200, 2))
with h5py.File(sys.argv[1], "w") as f:
    f["x"], f["grad"] = x, 2 * x @ np.array([[2, 0.5], [0.5, 1]]) + np.sin(3 * x)
PY
  cat >"$work/e.yaml" <<YAML
name: ema
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 120, seed: 3}
sweep:
  zip:
    optimizer.name: [adam, adam, sgd, lbfgs]
    optimizer.lr: [0.02, 0.01, 0.01, 1]
    optimizer.momentum: [0, 0, 0.9, 0]
    train.seed: [3, 4, 3, 3]
    train.epochs: [120, 120, 120, 40]
    train.ema_decay: [0.9, 0.9, 0.95, 0.8]
YAML
  cat >"$work/m.yaml" <<YAML
name: ema_minibatch
data: {target: file, path: data.h5}
model: {widths: [16, 16], activation: tanh, dtype: float64}
optimizer: {lr: 0.02}
train: {epochs: 60, batch_size: 32, val_fraction: 0.25, patience: 3, ema_decay: 0.9}
sweep:
  grid: {optimizer.lr: [0.02, 0.005]}
YAML
  for n in 1 3; do
    run mpi $n "$GRADFIT_BIN" --out "$work/r$n" "$work/e.yaml"
    expect_rc 0
    "$PYTHON" tests/train/pytorch_reference.py "$work/r$n/results.h5" "$work/data.h5" --tol 1e-9 ||
      fail "-n $n differs from PyTorch"
    run mpi $n "$GRADFIT_BIN" --out "$work/m$n" "$work/m.yaml"
    expect_rc 0
  done
  "$PYTHON" tests/cli/compare_rank_counts.py "$work/r1/results.h5" "$work/r3/results.h5" --tol 1e-10 ||
    fail "-n 1 and -n 3 differ (full batch)"
  "$PYTHON" tests/cli/compare_rank_counts.py "$work/m1/results.h5" "$work/m3/results.h5" --tol 1e-10 ||
    fail "-n 1 and -n 3 differ (mini-batches)"
  "$PYTHON" - "$work/r1/results.h5" "$work/m1/results.h5" <<'PY' || fail "the runs do not test what they should"
import sys, h5py
full, mini = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert max(int(g.attrs["ensemble"]) for g in full["runs"].values()) == 2, "no ensemble"
statuses = {g.attrs["status"] for g in mini["runs"].values()}
for f in (full, mini):
    for name, g in f["runs"].items():
        print(f"{name}: {g.attrs['status']} after {len(g['epoch'])} epochs, ema_decay {g.attrs['ema_decay']}, "
              f"best_epoch {g.attrs['best_epoch']}, ensemble of {g.attrs['ensemble']}")
assert "early_stopped" in statuses, statuses
PY
  ;;
lbfgs_ema_resume)
  # L-BFGS and the moving average through the whole program: SIGTERM after the first checkpoint (exit code 75), the
  # same command again, and the sweep equals an uninterrupted one bit for bit (L-BFGS's state and the averages
  # travel through the checkpoint files), its function evaluations included. Each job on both ranks: L-BFGS's
  # steps after the first sum the stop and checkpoint requests on their own (JobTrainer::agree_on_requests).
  cat >"$work/s.yaml" <<YAML
name: resume_lbfgs
ranks_per_run: 2
ensemble_size: 2
data: {target: gaussian_wells, dim: 3, sampling: uniform, samples: 4000, well_width: 2.0}
model: {widths: [32, 32], activation: softplus, dtype: float64}
train: {epochs: 100, val_fraction: 0.25, ema_decay: 0.9}
checkpoint: {every_epochs: 1, every_seconds: 0}
sweep:
  zip:
    optimizer.name: [lbfgs, adam, adam]
    optimizer.lr: [1, 0.01, 0.003]
YAML
  stop_at_first_checkpoint "$work/r" "$work/s.yaml"
  cat "$work/out" "$work/err"
  expect_rc 75
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  expect_in out "continuing in .*: [0-9]+ runs? already finished, [1-9][0-9]* to resume from checkpoints"
  compare_to_uninterrupted "$work/r"
  "$PYTHON" - "$work/reference/results.h5" "$work/r/results.h5" <<'PY' || fail "function evaluations differ"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for name in a["runs"]:
    x, y = a["runs"][name].attrs, b["runs"][name].attrs
    assert x["function_evaluations"] == y["function_evaluations"], name
    assert (x["function_evaluations"] > 100) == (x["optimizer"] == "lbfgs"), (name, x["function_evaluations"])
print("function evaluations identical:", {n: int(g.attrs["function_evaluations"]) for n, g in a["runs"].items()})
PY
  ;;
test_metrics)
  # data.test_path: every ended run is evaluated on the test file with its saved weights. Its test metrics (run
  # attributes, /summary, the leaderboard) equal `eval` on the same file (computed here from eval's PRED.h5); a
  # sweep killed (SIGKILL) after a run ended and resumed ends with the uninterrupted sweep's, the run finished before
  # the kill in the leaderboard with its own; pruned runs get them too;
  # a test file of another n, or none, is one error line before anything is written.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
def write(path, rows, seed, dim=6):  # two "atoms": V = sum sin(x) + |x|^2 / 4
    x = np.random.default_rng(seed).uniform(-2, 2, (rows, dim))
    with h5py.File(path, "w") as f:
        f["x"], f["grad"], f["value"] = x, np.cos(x) + x / 2, np.sin(x).sum(1) + (x * x).sum(1) / 4
        if dim == 6:
            f.attrs["numbers"] = np.array([1, 8])
write(sys.argv[1] + "/train.h5", 600, 1)
write(sys.argv[1] + "/test.h5", 300, 2)
write(sys.argv[1] + "/test3.h5", 300, 3, dim=3)
PY
  cat >"$work/s.yaml" <<YAML
name: tested
ranks_per_run: 1
ensemble_size: 1
data: {target: file, path: train.h5, test_path: test.h5}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 150, batch_size: 100, val_fraction: 0.2}
checkpoint: {every_epochs: 1, every_seconds: 0}
sweep:
  grid: {optimizer.lr: [0.01, 0.003, 0.001, 0.03]}
YAML
  mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml" </dev/null >"$work/out" 2>&1 &
  job=$!
  wait_for_file "$work/r/runs" '*.h5' || fail "no run finished"
  pkill -KILL -f "^$GRADFIT_BIN .*$work/r " || fail "no rank to kill"
  wait "$job"
  run mpi 2 "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/s.yaml"
  expect_rc 0
  expect_in out "continuing in .*: [1-3] runs? already finished"
  expect_in out "^rank +id +status +best_val_loss +rel_error +test_rel_err +loss +name$"
  cp "$work/out" "$work/resumed.out"
  mpi 2 "$GRADFIT_BIN" --out "$work/reference" "$work/s.yaml" </dev/null >"$work/ref.out" 2>&1 ||
    fail "the uninterrupted sweep failed"
  for lr in 0.01 0.003 0.001 0.03; do
    run "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/test.h5" --run "lr=$lr" --out "$work/p$lr.h5"
    expect_rc 0
  done
  cp "$work/out" "$work/eval.out"
  "$PYTHON" - "$work" <<'PY' || fail "test metrics differ from eval's"
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(f"{w}/test.h5") as d:
    S, value = d["grad"][:], d["value"][:]
r, ref = h5py.File(f"{w}/r/results.h5"), h5py.File(f"{w}/reference/results.h5")
summary = {row["name"].decode(): row for row in r["summary"][:]}
keys = ("test_rel_grad_error", "test_grad_mae", "test_grad_rmse", "test_value_mae")
for lr in ("0.01", "0.003", "0.001", "0.03"):
    g = r["runs"][f"lr={lr}"]
    with h5py.File(f"{w}/p{lr}.h5") as p:
        e, ev = p["grad"][:] - S, p["value"][:] - value
    eval_metrics = {"test_rel_grad_error": np.linalg.norm(e) / np.linalg.norm(S), "test_grad_mae": np.abs(e).mean(),
                    "test_grad_rmse": np.sqrt((e * e).mean()), "test_value_mae": np.abs(ev - ev.mean()).mean()}
    for k in keys:
        mine = g.attrs[k]
        assert abs(mine - eval_metrics[k]) <= 1e-12 * eval_metrics[k], (lr, k, mine, eval_metrics[k])
        assert summary[f"lr={lr}"][k] == mine, (lr, k, "summary")
        assert ref["runs"][f"lr={lr}"].attrs[k] == mine, (lr, k, "differs from the uninterrupted sweep")
    assert g.attrs["test_rows"] == 300 and g.attrs["test_data"].endswith("/test.h5")
    assert list(g.attrs["numbers"]) == [1, 8], g.attrs["numbers"]
    print(f"lr={lr}: " + ", ".join(f"{k} {g.attrs[k]:.9e}" for k in keys) + " = eval's and the uninterrupted sweep's")
    rows = [l.split() for l in open(f"{w}/resumed.out") if l.split()[:1] != [] and l.split()[-1] == f"lr={lr}"]
    assert any(row[0].isdigit() and row[5] == f"{g.attrs['test_rel_grad_error']:.4e}" for row in rows), rows
PY
  # Pruned runs are evaluated too.
  write_prune_sweep "$work/prune.yaml" "{method: asha, min_epochs: 4}"
  run mpi 2 "$GRADFIT_BIN" --out "$work/pr" --set data.test_path=test3.h5 "$work/prune.yaml"
  expect_rc 0
  "$PYTHON" - "$work/pr/results.h5" <<'PY' || fail "a run without test metrics"
import sys, h5py, numpy as np
runs = h5py.File(sys.argv[1])["runs"]
statuses = sorted(g.attrs["status"] for g in runs.values())
assert "pruned" in statuses and "done" in statuses, statuses
for name, g in runs.items():
    assert np.isfinite(g.attrs["test_rel_grad_error"]) and g.attrs["test_rows"] == 300, name
print(f"{len(runs)} runs ({statuses.count('pruned')} pruned): each has its test metrics")
PY
  # A test file of another n, and a missing one: one line naming the key, nothing written.
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=test3.h5 "$work/s.yaml"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  expect_in err "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*test3\.h5 has n = 3 columns, but the training data .*train\.h5 has n = 6 \(run lr=0\.01\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=absent.h5 "$work/s.yaml"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected one error line"
  expect_in err "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*absent\.h5"
  [ ! -e "$work/bad" ] || fail "an output folder was written" ;;
molecule_workflow)
  # The molecular example shortened (docs/molecules.md): MD frames labelled by a physics code (ASE's EMT, a Cu6
  # cluster at 500 K) in extended XYZ -> scripts/ase_import.py (x and grad exactly the positions and -forces) -> a
  # sweep on inverse distances with data.test_path -> export --run best -> GradfitCalculator, whose energies and
  # forces equal eval's predictions to 1e-10 (float64) -> 100 steps of NVE in ASE (experiments/molecule/md.py:
  # total energy within 5 meV/atom, bonds within their training range) -> the figures; and a model/atoms mismatch
  # is one line.
  "$PYTHON" - "$work/md.extxyz" <<'PY' || fail "cannot make the EMT frames"
import sys, numpy as np, ase.io
from ase import Atoms, units
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
a = 2.55 / np.sqrt(2)  # an octahedron of Cu, nearest neighbours 2.55 Å apart
atoms = Atoms("Cu6", positions=[(a, 0, 0), (-a, 0, 0), (0, a, 0), (0, -a, 0), (0, 0, a), (0, 0, -a)], pbc=False)
atoms.calc = EMT()
MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=np.random.default_rng(0))
md = Langevin(atoms, 2 * units.fs, temperature_K=500, friction=0.02, rng=np.random.default_rng(1))
frames = []
for _ in range(700):
    md.run(2)
    frame = atoms.copy()
    frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    frames.append(frame)
ase.io.write(sys.argv[1], frames, format="extxyz")
PY
  run "$PYTHON" scripts/ase_import.py "$work/md.extxyz" --index :600 --out "$work/train.h5"
  expect_rc 0
  expect_in out "^wrote .*train\.h5: 600 frames of 6 atoms \(Cu6\)"
  run "$PYTHON" scripts/ase_import.py "$work/md.extxyz" --index 600: --out "$work/test.h5"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the imported data are not the source's"
import sys, h5py, numpy as np, ase.io
w = sys.argv[1]
frames = ase.io.read(f"{w}/md.extxyz", ":")
with h5py.File(f"{w}/train.h5") as t, h5py.File(f"{w}/test.h5") as h:
    x, grad = np.concatenate([t["x"][:], h["x"][:]]), np.concatenate([t["grad"][:], h["grad"][:]])
    value = np.concatenate([t["value"][:], h["value"][:]])
    assert list(t.attrs["numbers"]) == [29] * 6
assert np.array_equal(x, np.array([f.get_positions().ravel() for f in frames]))
assert np.array_equal(grad, -np.array([f.get_forces().ravel() for f in frames]))
assert np.array_equal(value, np.array([f.get_potential_energy() for f in frames]))
print(f"imported {len(x)} frames: x, grad, value equal the source's positions, -forces and energies exactly")
PY
  cat >"$work/s.yaml" <<YAML
name: cu6
data: {target: file, path: train.h5, test_path: test.h5, standardize: true}
model: {widths: [32, 32], activation: silu, dtype: float64, features: inverse_distances}
optimizer: {name: adam, lr: 0.003, schedule: cosine}
train: {epochs: 150, batch_size: 64, val_fraction: 0.1}
sweep:
  grid: {optimizer.lr: [0.003, 0.01]}
YAML
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/s.yaml"
  expect_rc 0
  run "$GRADFIT_BIN" export "$work/r/results.h5" --run best --out "$work/cu6.pt"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/test.h5" --run best --out "$work/pred.h5"
  expect_rc 0
  "$PYTHON" - "$work" <<'PY' || fail "the calculator differs from eval"
import sys, h5py, numpy as np
sys.path.insert(0, "scripts")
from ase import Atoms
from ase_calculator import GradfitCalculator
w = sys.argv[1]
calc = GradfitCalculator(f"{w}/cu6.pt")
with h5py.File(f"{w}/test.h5") as d, h5py.File(f"{w}/pred.h5") as p:
    x, value, grad = d["x"][:], p["value"][:], p["grad"][:]
energies, forces = calc.evaluate(x)
de = np.abs(energies - value).max() / np.abs(value).max()
df = np.abs(forces.reshape(grad.shape) + grad).max() / np.abs(grad).max()
atoms = Atoms("Cu6", positions=x[3].reshape(6, 3))
atoms.calc = calc
one = np.abs(atoms.get_forces().ravel() + grad[3]).max() / np.abs(grad).max()
print(f"calculator vs eval on {len(x)} test frames: energies {de:.2e}, forces {df:.2e}; one frame via ASE {one:.2e}")
assert de <= 1e-10 and df <= 1e-10 and one <= 1e-10
try:
    bad = Atoms("Cu5Ag", positions=x[3].reshape(6, 3))
    bad.calc = calc
    bad.get_forces()
    raise AssertionError("other atoms were accepted")
except ValueError as error:
    message = str(error)
print(message)
assert "\n" not in message and "6 atoms (Cu6: 29 29 29 29 29 29)" in message and "(AgCu5: 29 29 29 29 29 47)" in message
PY
  run "$PYTHON" experiments/molecule/md.py "$work/cu6.pt" "$work/train.h5" --steps 100 --dt 0.5 --out "$work/md"
  expect_rc 0
  expect_in out "^NVE 50 fs \(100 steps of 0\.5 fs\) of Cu6 from 300 K: total energy within [0-9.]+ meV/atom"
  expect_in out "^bonds: ([0-9]+) of \1 stayed within their training range$"
  run "$PYTHON" experiments/molecule/plot.py "$work/cu6.pt" "$work/test.h5" "$work/md/nve.csv" --out "$work/fig"
  expect_rc 0
  [ -s "$work/fig/forces.png" ] && [ -s "$work/fig/nve.png" ] || fail "no figures" ;;
molecular_bad_input)
  # Bad molecular data, each one error line naming the file, row and atoms, and nothing lost: a data.test_path
  # with two atoms at one place or a NaN is refused before anything is trained or written (not NaN test metrics
  # after training); coordinates beyond 1e6 Å and an atomic number that is no element are refused in the training
  # data; eval refuses coincident atoms as training does; eval and export never write over a file they read (by
  # path, through a symbolic link, or a hard link), which stays byte for byte as it was.
  "$PYTHON" - "$work" <<'PY' || fail "cannot write the data"
import sys, h5py, numpy as np
w = sys.argv[1]
rng = np.random.default_rng(4)
def write(name, x, numbers=(1, 8, 1), nan_row=None):
    grad = np.sin(x)
    if nan_row is not None:
        grad[nan_row, 4] = np.nan
    with h5py.File(f"{w}/{name}", "w") as f:
        f["x"], f["grad"] = x, grad
        f.attrs["numbers"] = np.array(numbers)
frames = lambda n: (np.array([0, 0, 0, 0.96, 0, 0, -0.24, 0.93, 0]) + rng.normal(0, 0.05, (n, 9)))
write("train.h5", frames(64))
test = frames(40)
write("test.h5", test)
test[7, 6:9] = test[7, 0:3]  # atom 2 on atom 0
write("test_coincident.h5", test)
write("test_nan.h5", frames(40), nan_row=5)
far = frames(64)
far[11, 4] = 1e300
write("far.h5", far)
write("dummy.h5", frames(64), numbers=(0, 8, 1))
PY
  cat >"$work/s.yaml" <<YAML
name: water
data: {target: file, path: train.h5, test_path: test.h5}
model: {widths: [8], activation: softplus, dtype: float64, features: inverse_distances}
train: {epochs: 3}
YAML
  one_error() {  # one_error PATTERN: exit code 1, one error line matching PATTERN, no output folder
    expect_rc 1
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
    expect_in err "$1"
    [ ! -e "$work/bad" ] || fail "an output folder was written"
  }
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=test_coincident.h5 "$work/s.yaml"
  one_error "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*test_coincident\.h5: row 7: atoms 0 and 2 are at the same place \(model\.features inverse_distances needs distinct atoms\) \(run water\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.test_path=test_nan.h5 "$work/s.yaml"
  one_error "^gradfit_dist: error: .*s\.yaml: key 'data\.test_path': .*test_nan\.h5: dataset 'grad' has NaN or Inf in row 5 \(run water\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/bad" --set data.path=dummy.h5 "$work/s.yaml"
  one_error "^gradfit_dist: error: .*dummy\.h5: attribute 'numbers': atom 0 has atomic number 0, not an element \(1 to 118\)$"
  run mpi 2 "$GRADFIT_BIN" --out "$work/far" --set data.path=far.h5 "$work/s.yaml"
  expect_rc 1
  [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
  expect_in err "^gradfit_dist: error: run water: .*far\.h5: dataset 'x' row 11: a coordinate of 1e\+300 Å, beyond ±1e6 Å, which no physical structure reaches"
  # A good test file trains; eval then refuses coincident atoms, and an --out that is an input.
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/s.yaml"
  expect_rc 0
  run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/test_coincident.h5"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*test_coincident\.h5: row 7: atoms 0 and 2 are at the same place"
  sums() { cksum "$work/train.h5" "$work/r/results.h5"; }
  before=$(sums)
  ln -s train.h5 "$work/link.h5"
  ln "$work/train.h5" "$work/hard.h5"
  ln -s r/results.h5 "$work/results_link.h5"
  for out in "$work/train.h5" "$work/link.h5" "$work/hard.h5" "$work/./r/../train.h5"; do
    run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/train.h5" --out "$out"
    expect_rc 1
    [ "$(grep -c 'gradfit_dist: error' "$work/err")" -eq 1 ] || fail "expected exactly one error line"
    expect_in err "^gradfit_dist: error: --out .* is the data file .*train\.h5: eval never writes over a file it reads; choose another name$"
  done
  for out in "$work/r/results.h5" "$work/results_link.h5"; do
    run mpi 2 "$GRADFIT_BIN" eval "$work/r/results.h5" "$work/train.h5" --out "$out"
    expect_rc 1
    expect_in err "^gradfit_dist: error: --out .* is the results file .*results\.h5: eval never writes"
    run "$GRADFIT_BIN" export "$work/r/results.h5#water" --out "$out"
    expect_rc 1
    expect_in err "^gradfit_dist: error: --out .* is the results file .*results\.h5: export never writes over a file it reads; choose another name$"
  done
  [ "$(sums)" = "$before" ] || fail "an input changed"
  ls "$work" "$work/r" | grep -q '\.tmp-' && fail "a temporary was left" ;;
best_run_ties)
  # One best-run rule everywhere, ties included: two runs that differ only in a clipping norm no gradient reaches
  # train the same numbers (equal metrics, bit for bit), planned (and finished, on one group) in the order
  # max_grad_norm=2.0e9, max_grad_norm=1.0e9. The leaderboard gradfit_dist prints, /summary's rank, `--run best`
  # (eval's and export's rule) and analyze.py all name max_grad_norm=1.0e9, the first by name; without validation
  # and with it.
  for validation in 0 0.25; do
    cat >"$work/t.yaml" <<YAML
name: ties
ranks_per_run: 1
data: {target: quadratic, P: [[2, 0.5], [0.5, 1]]}
model: {widths: [8], activation: softplus, dtype: float64}
train: {epochs: 20, val_fraction: $validation}
sweep:
  grid: {optimizer.max_grad_norm: [2.0e9, 1.0e9]}
YAML
    rm -rf "$work/r"
    run "$GRADFIT_BIN" --progress lines --out "$work/r" "$work/t.yaml"
    expect_rc 0
    expect_in out "^1 +[0-9a-f]+ +done .* max_grad_norm=1\.0e9$"
    expect_in out "^2 +[0-9a-f]+ +done .* max_grad_norm=2\.0e9$"
    "$PYTHON" - "$work/r/results.h5" "$validation" <<'PY' || fail "the runs are not tied, or /summary's rank is not the rule's"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    runs, summary = f["runs"], f["summary"][:]
    metric = "best_val_loss" if float(sys.argv[2]) > 0 else "final_rel_grad_error"
    a, b = (runs[n].attrs[metric] for n in ("max_grad_norm=1.0e9", "max_grad_norm=2.0e9"))
    assert a == b, (metric, a, b)
    ranks = {row["name"].decode(): int(row["rank"]) for row in summary}
    assert ranks == {"max_grad_norm=1.0e9": 1, "max_grad_norm=2.0e9": 2}, ranks
    print(f"tied at {metric} = {a!r}; /summary ranks {ranks}")
PY
    run "$GRADFIT_BIN" export "$work/r/results.h5" --run best --out "$work/best.pt"
    expect_rc 0
    expect_in out "^wrote .*best\.pt: TorchScript of run 'max_grad_norm=1\.0e9'"
    run "$PYTHON" scripts/analyze.py "$work/r/results.h5" --no-plots
    expect_rc 0
    expect_in out "^best run: max_grad_norm=1\.0e9 \("
  done ;;
missing_sweep_file)
  # A config error like any other (exit code 1, one line from rank 0), not CLI11's ExistingFile (105).
  run mpi 2 "$GRADFIT_BIN" "$work/absent.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*absent.yaml: cannot open the sweep file$"
  [ "$(grep -c error "$work/err")" -eq 1 ] || fail "expected exactly one error line"
  [ ! -s "$work/out" ] || fail "something was printed to stdout" ;;
*)
  fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
