# cli cases: Resume and preemption: the same command continues, signals, kills, the output lock.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_resume_or_refuse() {
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
  "$H5DUMP" -a /runs/tiny/epochs_run "$work/r/results.h5" | grep -q "(0): 4" || fail "--fresh did not start over"
}

case_sigterm_checkpoint_resume() {
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
  compare_to_uninterrupted "$work/r"
}

case_foreign_optimizer_state() {
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
  [ -f "$checkpoint" ] || fail "the checkpoint was removed"
}

case_sigkill_resume() {
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
  compare_to_uninterrupted "$work/r"
}

case_output_lock() {
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
  [ "$(ls -A "$work/o")" = .lock ] || fail "the refused job touched the folder: $(ls -A "$work/o")"
}

case_progress_auto_file() {
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
  ! grep -q $'\r' "$work/out" || fail "carriage returns in the output file"
}

case_lbfgs_ema_resume() {
  # L-BFGS and the moving average through the whole program: SIGTERM after the first checkpoint (exit code 75), the
  # same command again, and the sweep equals an uninterrupted one bit for bit (L-BFGS's state and the averages
  # travel through the checkpoint files), its function evaluations included. Each job on both ranks: L-BFGS's
  # steps after the first sum the stop and checkpoint requests on their own (EnsembleTrainer::agree_on_requests).
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
  stop_and_resume "$work/s.yaml"
  "$PYTHON" - "$work/reference/results.h5" "$work/r/results.h5" <<'PY' || fail "function evaluations differ"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for name in a["runs"]:
    x, y = a["runs"][name].attrs, b["runs"][name].attrs
    assert x["function_evaluations"] == y["function_evaluations"], name
    assert (x["function_evaluations"] > 100) == (x["optimizer"] == "lbfgs"), (name, x["function_evaluations"])
print("function evaluations identical:", {n: int(g.attrs["function_evaluations"]) for n, g in a["runs"].items()})
PY
}
