#!/usr/bin/env bash
# End-to-end checks of gradfit_dist. Usage: cli_test.sh CASE (run by ctest from the repository root, with
# GRADFIT_BIN, MPIEXEC, MPIEXEC_FLAGS, H5DUMP and H5IMPORT set).
set -u
case_name=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
# run CMD...: runs it, keeping stdout in $work/out, stderr in $work/err and the exit code in $rc.
run() { "$@" </dev/null >"$work/out" 2>"$work/err"; rc=$?; cat "$work/out" "$work/err"; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "exit code $rc, expected $1"; }
expect_failure() { [ "$rc" -ne 0 ] || fail "exit code 0, expected a failure"; }
expect_in() { grep -Eq -- "$2" "$work/$1" || fail "$1 does not match: $2"; }
mpi() { local n=$1; shift; "$MPIEXEC" $MPIEXEC_FLAGS -n "$n" "$@"; }

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
  [ -z "$(ls "$work/seed" | grep -v '^results.h5$')" ] || fail "stray files: $(ls "$work/seed")" ;;
refuses_to_overwrite)
  cat >"$work/tiny.yaml" <<YAML
data: {target: quadratic, P: [[1, 0], [0, 1]]}
train: {epochs: 3}
YAML
  run "$GRADFIT_BIN" --out "$work/r" "$work/tiny.yaml"
  expect_rc 0
  before=$(md5sum <"$work/r/results.h5")
  run "$GRADFIT_BIN" --out "$work/r" "$work/tiny.yaml"
  expect_failure
  expect_in err "results file '.*/r/results.h5' already exists; choose another --out or pass --overwrite"
  [ "$(md5sum <"$work/r/results.h5")" = "$before" ] || fail "the existing results changed"
  run "$GRADFIT_BIN" --out "$work/r" --overwrite "$work/tiny.yaml"
  expect_rc 0 ;;
config_typo)
  printf 'data:\n  target: quadratic\n  P: [[1]]\ntrain:\n  batch_size: 10\n  epohcs: 5\n' >"$work/typo.yaml"
  run mpi 2 "$GRADFIT_BIN" --out "$work/r" "$work/typo.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: .*typo.yaml:6:3: key 'train.epohcs': unknown key; did you mean 'train.epochs'\?$"
  [ "$(grep -c error "$work/err")" -eq 1 ] || fail "expected exactly one error line"
  [ ! -e "$work/r" ] || fail "an output directory was created" ;;
bad_data_file)
  echo "not hdf5" >"$work/grads.h5"
  printf 'data:\n  target: file\n  path: grads.h5\n' >"$work/file.yaml"
  run "$GRADFIT_BIN" --out "$work/r" "$work/file.yaml"
  expect_rc 1
  expect_in err "^gradfit_dist: error: cannot open HDF5 file '.*grads.h5' \(missing, or not an HDF5 file\)$"
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
  # within 10 seconds, naming the rank.
  start=$(date +%s.%N)
  run timeout 60 "$MPIEXEC" $MPIEXEC_FLAGS -n 4 "$FAULT_BIN" experiments/seed_quadratic.yaml "$work/r"
  elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
  echo "exit code $rc after $elapsed s"
  expect_failure
  [ "$rc" -ne 124 ] || fail "the job hung until timeout killed it"
  awk -v t="$elapsed" 'BEGIN {exit !(t < 10)}' || fail "took $elapsed s"
  expect_in err "gradfit_dist: error on rank 2: injected failure after epoch 3"
  [ ! -e "$work/r/results.h5" ] || fail "a results file was written" ;;
dry_run)
  # --dry-run lists the expanded runs and trains nothing; --set changes the base first.
  run "$GRADFIT_BIN" --dry-run --out "$work/r" --set train.epochs=7 experiments/seed_sweep.yaml
  expect_rc 0
  expect_in out "^24 runs from experiments/seed_sweep.yaml"
  expect_in out "^1 +[0-9a-f]{12} +2-10-10-1 +relu +adam +0.05 +7 +full +activation=relu,widths=10x10,lr=0.05,repeat=0$"
  expect_in out "^24 +[0-9a-f]{12} +2-32-32-1 +softplus +adam +0.02 +7 +full +activation=softplus,widths=32x32,lr=0.02,repeat=1$"
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
CASES
  [ "$i" -eq 5 ] || fail "ran $i cases" ;;
seed_sweep_groups)
  # A small sweep on 4 ranks in groups of 2: every run once, a leaderboard, one merged results file.
  run mpi 4 "$GRADFIT_BIN" --progress lines --out "$work/s" --set train.epochs=20 --set ranks_per_run=2 \
    experiments/seed_sweep.yaml
  expect_rc 0
  expect_in out "24 runs, 4 ranks in 2 groups"
  [ "$(grep -c '^\[ *[0-9]*/24 start\]' "$work/out")" -eq 24 ] || fail "expected 24 starts"
  [ "$(grep -c '^\[[0-9]*/24 done\] done ' "$work/out")" -eq 24 ] || fail "expected 24 finished runs"
  [ "$(h5ls "$work/s/results.h5/runs" | wc -l)" -eq 24 ] || fail "expected 24 runs in results.h5" ;;
missing_sweep_file)
  run "$GRADFIT_BIN" "$work/absent.yaml"
  expect_failure
  expect_in err "absent.yaml" ;;
*)
  fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
