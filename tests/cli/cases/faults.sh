# cli cases: Failures: a rank or a group failing, unwritable and full disks, damaged output files, the outcome.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_full_disk() {
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
  expect_in out "^continuing in .*: [0-9]+ runs? already finished"
  "$PYTHON" -c 'import sys, h5py; r = h5py.File(sys.argv[1], "r")["runs"]
assert len(r) == 24 and all(r[n].attrs["status"] == "done" for n in r), len(r)' "$work/disk/out/results.h5" ||
    fail "the rerun did not finish every run"
}

case_fault_on_one_rank() {
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
  [ ! -e "$work/r/results.h5" ] || fail "a results file was written"
}

case_damaged_files() {
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
  compare_to_uninterrupted "$work/r" any_ensembles
}

case_group_unwritable_run_file() {
  # The results file of one run cannot be written (a directory is in its place): the group's root fails, the
  # group agrees, and the job ends with one error line naming the run.
  group_fault unwritable_run_file:2 \
    "^gradfit_dist: error: run lr=0\.03: cannot rename '.*/runs/[0-9a-f]{12}\.h5\.tmp-[0-9]+' to '.*/runs/[0-9a-f]{12}\.h5': Is a directory$"
}

case_group_fault_in_run() {
  # The group training run 2 fails in a step it shares (its root throws in the before_run seam, inside
  # parallel::all_or_none): the group agrees, and the job ends with one error line naming the run.
  group_fault throw_before_run:2 "^gradfit_dist: error: run lr=0\.03: injected failure before run 2$"
}

case_one_rank_fault_in_sweep() {
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
  done
}

case_job_outcome() {
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
  [ ! -e "$work/f/.lock" ] || fail "the lock outlived the failed job"
}
