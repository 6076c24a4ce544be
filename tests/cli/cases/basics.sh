# cli cases: The command's front door: help, version, the seed example, sweep files and their errors, --dry-run,
# absurd sizes.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_help() {
  run "$GRADFIT_BIN" --help
  expect_rc 0
  expect_in out "SWEEP.yaml"
  expect_in out "--out"
  expect_in out "--version"
}

case_version() {
  run "$GRADFIT_BIN" --version
  expect_rc 0
  expect_in out "^gradfit_dist [0-9]+\.[0-9]+\.[0-9]+ \("
}

case_seed_example() {
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
  [ "$(ls "$work/seed/runs" | wc -l)" -eq 1 ] && [ -z "$(ls "$work/seed/checkpoints")" ] || fail "runs/checkpoints"
}

case_config_typo() {
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
  [ ! -e "$work/r" ] || fail "an output directory was created"
}

case_dry_run() {
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
  [ ! -e "$work/r" ] || fail "--dry-run wrote output"
}

case_invalid_sweeps_write_nothing() {
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
  [ ! -e "$work/k" ] || fail "output was written"
}

case_nothing_before_valid() {
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
  grep -q "^failed: run nan: .*bad\\.h5: dataset 'grad' has NaN or Inf in row 3" "$work/e/outcome" || fail "outcome: $(cat "$work/e/outcome")"
}

case_absurd_sizes() {
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
  rest="buffers $size, model $size, chunks $size, runtime $size\\); this node has $size for 2 ranks \\($size each\\)$"
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
  # --dry-run prints the estimate that refuses them, the same text, and refuses nothing (the largest job's).
  for k in 5 6; do
    timed_run "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --out "$work/o$k" "$work/a$k.yaml"
    refused=$(sed -n 's/^gradfit_dist: error: run [a-z]* needs \(.*\); this node .*/\1/p' "$work/err")
    run mpi 2 "$GRADFIT_BIN" --dry-run --out "$work/o$k" "$work/a$k.yaml"
    expect_rc 0
    printed=$(sed -n 's/^memory estimate, 2 ranks per run, cpu: run [a-z]* needs //p' "$work/out")
    [ -n "$refused" ] && [ "$refused" = "$printed" ] || fail "a$k: --dry-run printed '$printed', refused '$refused'"
    [ ! -e "$work/o$k" ] || fail "--dry-run wrote output"
  done
}

case_missing_sweep_file() {
  # A config error like any other (exit code 1, one line from rank 0), not CLI11's ExistingFile (105).
  run mpi 2 "$GRADFIT_BIN" "$work/absent.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*absent.yaml: cannot open the sweep file$"
  [ "$(grep -c error "$work/err")" -eq 1 ] || fail "expected exactly one error line"
  [ ! -s "$work/out" ] || fail "something was printed to stdout"
}
