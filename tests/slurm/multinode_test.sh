#!/usr/bin/env bash
# slurm/gradfit-multinode.sbatch on a two-node Slurm made of network namespaces on this machine
# (slurm/local_cluster.sh start --nodes 2, root only): each node has its own hostname and address, and the ranks of
# different nodes talk over TCP. Checks, with -N 2 --ntasks-per-node 2:
#   - a sweep whose rank groups span both nodes (ranks_per_run: 4) and one whose groups do not (ranks_per_run: 2)
#     run on both hosts (each run's `hosts` attribute), print each node's ranks, threads and memory at start, and
#     equal `mpirun -n 4` on one node bit for bit;
#   - preemption (`scancel --signal=USR1 --batch`) of the sweep of one group per node: a checkpoint on both nodes,
#     exit 75, requeue, completion equal to the uninterrupted sweep;
#   - one node's ranks killed: one error line, outcome `failed`, and the same command again finishes equal to the
#     uninterrupted sweep.
# Run by ctest from the repository root, with GRADFIT_BIN, MPIEXEC, MPIEXEC_FLAGS and PYTHON set. Exit code 77
# (skipped) where no such cluster can be made: not root, or a Slurm configured by someone else.
set -u
# Not under /tmp, which is each node's own on a real cluster (these nodes share the machine's filesystem).
work=$(mktemp -d /var/tmp/gradfit-multinode.XXXXXX)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
start_cluster --nodes 2

# Four runs, checkpointed every 10 epochs: float64, mini-batches, validation. With ranks_per_run 2, two ensembles
# of two, one for each group.
write_sweep() {
  cat >"$work/s$1.yaml" <<YAML
name: multinode_$1
ranks_per_run: $1
ensemble_size: $2
data: {target: gaussian_wells, dim: 3, sampling: uniform, samples: 2000, well_width: 2.0}
model: {widths: [16, 16], activation: softplus, dtype: float64}
train: {epochs: 150, batch_size: 500, val_fraction: 0.25}
checkpoint: {every_epochs: 10, every_seconds: 0}
sweep:
  grid: {optimizer.lr: [0.01, 0.003]}
  repeats: 2
YAML
}
write_sweep 4 0
write_sweep 2 2

# submit SWEEP OUT [gradfit_dist options]: the multi-node script as shipped, on two nodes of two CPU-only ranks
# each; the job id in $job.
submit() {
  local sweep=$1 out=$2
  shift 2
  job=$(GRADFIT_BIN="$GRADFIT_BIN" sbatch --parsable --nodes=2 --ntasks-per-node=2 --cpus-per-task=1 \
    --gpus-per-node=0 --time=15 --output="$work/job-%j.out" slurm/gradfit-multinode.sbatch "$work/$sweep.yaml" \
    --out "$out" --progress lines "$@") || fail "sbatch failed"
  log "submitted job $job ($sweep)"
}
completes() {
  wait_for 300 ended || fail "job $job did not end (state $(field JobState))"
  state_is COMPLETED || fail "job $job did not complete (state $(field JobState))"
  [ "$(cat "$2/outcome")" = "complete" ] || fail "outcome: $(cat "$2/outcome")"
  "$PYTHON" scripts/compare_results.py "$work/ref$1/results.h5" "$2/results.h5" || fail "results differ"
}

log "the sweeps on one node: mpirun -n 4"
for k in 4 2; do
  OMP_NUM_THREADS=1 "$MPIEXEC" $MPIEXEC_FLAGS -n 4 "$GRADFIT_BIN" --threads 1 --progress lines --out "$work/ref$k" \
    "$work/s$k.yaml" >/dev/null || fail "the sweep with ranks_per_run: $k failed under mpirun"
done

# check_nodes OUT JOB_OUTPUT RANKS_PER_RUN: the start lines name each node with its ranks, threads and memory (this
# machine's: the nodes share it), and every run records the hosts its group ran on.
check_nodes() {
  "$PYTHON" - "$@" <<'PY' || fail "hosts or node lines"
import os, re, sys, h5py
out, log, ranks_per_run = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3])
def text(b):  # train::bytes_text
    units = ["B", "kB", "MB", "GB", "TB"]
    u = 0
    while b >= 999.5 and u + 1 < len(units):
        b /= 1000
        u += 1
    return f"{b:.0f} {units[u]}" if u == 0 or b >= 9.95 else f"{b:.1f} {units[u]}"
memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
for node, ranks in (("gf-node1", "0-1"), ("gf-node2", "2-3")):
    line = f"node {node}: ranks {ranks}, 1 thread per rank, {text(memory)} memory ({text(memory / 2)} per rank)"
    assert line in log, f"no line '{line}' in the job's output"
with h5py.File(out + "/results.h5") as f:
    hosts = {name: g.attrs["hosts"] for name, g in f["runs"].items()}
expected = {"gf-node1,gf-node2"} if ranks_per_run == 4 else {"gf-node1", "gf-node2"}
assert set(hosts.values()) == expected, hosts
print(f"hosts of the runs: {hosts}")
PY
}

for k in 4 2; do
  submit "s$k" "$work/r$k" --threads 1
  completes "$k" "$work/r$k"
  check_nodes "$work/r$k" "$work/job-$job.out" "$k"
done

log "preempted once (ranks_per_run: 2, a group on each node): a checkpoint on both nodes, requeue, completion"
touch "$work/mark"
submit s2 "$work/p" --threads 1
preempt "$work/p" 1 "$work/saved"
[ "$(cat "$work/saved")" -eq 2 ] || fail "$(cat "$work/saved") checkpoint files at the requeue, expected one per node"
completes 2 "$work/p"
grep -q "requeueing job" "$work/job-$job.out" || fail "the job was not requeued by its script"
grep -q "to resume from checkpoints" "$work/job-$job.out" || fail "the requeued job did not resume"

log "one node's ranks killed"
touch "$work/mark"
submit s4 "$work/k" --threads 1 --stop-timeout 5
wait_for 120 state_is RUNNING || fail "job $job did not start"
wait_for 120 checkpoint_after "$work/k" "$work/mark" || fail "no checkpoint from job $job"
ranks=$(for p in $(ip netns pids gf-node2); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = gradfit_dist ] && echo "$p"; done)
[ -n "$ranks" ] || fail "no rank of job $job on gf-node2"
kill -KILL $ranks
wait_for 60 ended && state_is FAILED || fail "job $job did not fail (state $(field JobState))"
cat "$work/job-$job.out"
[ "$(grep -c '^gradfit_dist: error:' "$work/job-$job.out")" -eq 1 ] || fail "expected one error line"
grep -q "^failed: stopped by a signal, but no other rank answered for 5 s" "$work/k/outcome" ||
  fail "outcome: $(cat "$work/k/outcome")"
[ ! -e "$work/k/.lock" ] || fail "the lock stayed behind"
log "the same command again"
submit s4 "$work/k" --threads 1 --stop-timeout 5
completes 4 "$work/k"
grep -q "to resume from checkpoints" "$work/job-$job.out" || fail "the rerun did not resume"
log "PASS"
