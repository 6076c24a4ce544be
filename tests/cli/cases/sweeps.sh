# cli cases: Sweeps: groups, rank counts, pruning, the best run, the analysis, the Slurm script.
# Each function case_NAME is the ctest test cli.NAME (tests/cli/CMakeLists.txt reads the names here);
# cli_test.sh runs it after lib.sh's helpers, in a fresh $work folder.

case_rank_invariance() {
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
    fail "1-rank and 3-rank loss histories differ"
}

case_seed_sweep_groups() {
  # A small sweep on 4 ranks in groups of 2: every run once, a leaderboard, one merged results file.
  run mpi 4 "$GRADFIT_BIN" --progress lines --out "$work/s" --set train.epochs=20 --set ranks_per_run=2 \
    experiments/seed_sweep.yaml
  expect_rc 0
  expect_in out "24 runs, 4 ranks in 2 groups"
  [ "$(grep -c '^\[ *[0-9]*/24 start\]' "$work/out")" -eq 24 ] || fail "expected 24 starts"
  [ "$(grep -c '^\[[0-9]*/24 done\] done ' "$work/out")" -eq 24 ] || fail "expected 24 finished runs"
  [ "$(h5ls "$work/s/results.h5/runs" | wc -l)" -eq 24 ] || fail "expected 24 runs in results.h5"
}

case_prune_rule_and_groups() {
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
}

case_prune_kill_resume() {
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
  # How far the killed jobs got depends on how the two groups interleaved (under load, no run had its results file
  # by the last kill): any number of runs may be finished, and the start lines go on counting from them.
  expect_in out "continuing in .*: [0-9]+ runs? already finished"
  finished=$(sed -n 's/.*: \([0-9]*\) runs\? already finished.*/\1/p' "$work/out")
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
}

case_prune_errors() {
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
}

case_analyze() {
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
  expect_in err "pip install h5py pandas matplotlib"
}

case_slurm_script() {
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
  [ "$(cat "$work/term/outcome")" = interrupted ] || fail "outcome: $(cat "$work/term/outcome")"
}

case_best_run_ties() {
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
  done
}
