#!/usr/bin/env bash
# slurm/gradfit.sbatch against a real Slurm: a one-node cluster on this machine (slurm/local_cluster.sh, root
# only). A sweep is submitted, preempted twice with the time-limit warning (`scancel --signal=USR1 --batch`), and
# must be requeued, resume, and complete with every run done and bit-identical to an uninterrupted sweep; then a
# plain `scancel` must stop a job for good (checkpointed, not requeued).
# Run by ctest from the repository root, with GRADFIT_BIN, MPIEXEC, MPIEXEC_FLAGS and PYTHON set. Exit code 77
# (skipped) where no such cluster can be made: not root, or a Slurm configured by someone else.
set -u
work=$(mktemp -d /tmp/gradfit-slurm.XXXXXX)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
start_cluster

# Four runs on two groups of one rank; a checkpoint every 20 epochs, so that each part of the job checkpoints
# soon after it starts and still has most of its work ahead.
cat >"$work/s.yaml" <<'YAML'
name: slurm_requeue
ranks_per_run: 1
data: {target: gaussian_wells, dim: 3, sampling: uniform, samples: 4000, well_width: 2.0}
model: {widths: [32, 32], activation: softplus, dtype: float64}
train: {epochs: 600, batch_size: 1000, val_fraction: 0.25}
checkpoint: {every_epochs: 20, every_seconds: 0}
sweep:
  grid: {optimizer.lr: [0.01, 0.003]}
  repeats: 2
YAML

# submit OUT: the sbatch script as shipped, on this node's two ranks without GPUs; the job id in $job.
submit() {
  job=$(cd "$work" && GRADFIT_BIN="$GRADFIT_BIN" sbatch --parsable --ntasks=2 --cpus-per-task=1 --gpus-per-task=0 \
    --time=15 --output="$work/job-%j.out" "$OLDPWD/slurm/gradfit.sbatch" "$work/s.yaml" --out "$1" --threads 1 \
    --progress lines) || fail "sbatch failed"
  log "submitted job $job"
}
touch "$work/mark"
submit "$work/r"
preempt "$work/r" 1
preempt "$work/r" 2
wait_for 300 state_is COMPLETED || fail "job $job did not complete (state $(field JobState))"
log "job $job completed after $(field Restarts) requeues"
cat "$work/job-$job.out"
[ "$(grep -c 'requeueing job' "$work/job-$job.out")" -eq 2 ] || fail "expected two requeues in the job's output"
grep -q "to resume from checkpoints" "$work/job-$job.out" || fail "the requeued job did not resume"
[ "$(cat "$work/r/outcome")" = "complete" ] || fail "outcome: $(cat "$work/r/outcome")"

log "the same sweep, uninterrupted, under mpirun"
OMP_NUM_THREADS=1 "$MPIEXEC" $MPIEXEC_FLAGS -n 2 "$GRADFIT_BIN" --threads 1 --progress lines --out "$work/ref" \
  "$work/s.yaml" >/dev/null || fail "the uninterrupted sweep failed"
"$PYTHON" scripts/compare_results.py "$work/ref/results.h5" "$work/r/results.h5" || fail "results differ"

log "a plain scancel"
touch "$work/mark"
submit "$work/c"
wait_for 120 state_is RUNNING || fail "job $job did not start"
wait_for 120 checkpoint_after "$work/c" "$work/mark" || fail "no checkpoint from job $job"
scancel "$job" || fail "scancel failed"
wait_for 120 state_is CANCELLED || fail "job $job was not cancelled (state $(field JobState))"
wait_for 60 test -e "$work/c/outcome" || fail "no outcome written"
sleep 5  # a requeue would show by now
state_is CANCELLED || fail "job $job came back (state $(field JobState))"
[ "$(field Restarts)" = "0" ] || fail "job $job was requeued"
cat "$work/job-$job.out"
grep -q "not requeued" "$work/job-$job.out" || fail "the batch script did not say it stopped for good"
[ "$(cat "$work/c/outcome")" = "interrupted" ] || fail "outcome: $(cat "$work/c/outcome")"
ls "$work/c/checkpoints/"*.h5 >/dev/null 2>&1 || fail "the cancelled job left no checkpoint to continue from"
log "PASS"
