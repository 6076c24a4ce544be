# Shared by the tests against a real Slurm on this machine (slurm/local_cluster.sh): sourced, not run.
# Needs $work (the test's folder) and, for fail's report, $job (the job in hand).

fail() {
  echo "FAIL: $*"
  [ -n "${job:-}" ] && scontrol show job "$job" 2>/dev/null | head -20 && cat "$work/job-$job.out" 2>/dev/null
  exit 1
}
log() { echo "[$(date +%T)] $*"; }

# start_cluster ARGS...: skips the test (exit 77) where no cluster can be made: GRADFIT_SLURM_TEST unset, not
# root, or a Slurm configured by someone else. Else starts the cluster (slurm/local_cluster.sh start ARGS) and
# stops it when the test ends if it was not running before.
start_cluster() {
  if [ "${GRADFIT_SLURM_TEST:-0}" != 1 ]; then
    echo "SKIP: set GRADFIT_SLURM_TEST=1 to run it (as root: it installs Debian's Slurm and runs a local cluster)"
    exit 77
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: setting up a local Slurm needs root"
    exit 77
  fi
  started_here=0
  pgrep -x slurmctld >/dev/null || started_here=1
  slurm/local_cluster.sh start "$@"
  case $? in
    0) ;;
    3) echo "SKIP: this machine has a Slurm of its own"; exit 77 ;;
    *) fail "could not set up the local Slurm" ;;
  esac
  # A cluster this test started is stopped when it ends.
  trap 'rm -rf "$work"; [ $started_here -eq 1 ] && slurm/local_cluster.sh stop' EXIT
}

field() { scontrol show job "$job" | grep -Eo "\b$1=[^ ]*" | head -1 | cut -d= -f2; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}
state_is() { [ "$(field JobState)" = "$1" ]; }
ended() { [[ "$(field JobState)" =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]]; }
# A checkpoint written after the marker file $2 in folder $1.
checkpoint_after() { [ -n "$(find "$1/checkpoints" -name '*.h5' -newer "$2" 2>/dev/null | head -1)" ]; }
no_steps_left() { ! pgrep -f "^slurmstepd: \[$job\." >/dev/null; }

# preempt OUT N [COUNT_FILE]: waits for a checkpoint of this part of the job (newer than $work/mark), sends the
# time-limit warning, and checks that the job comes back requeued for the N-th time (writing the number of
# checkpoint files it left to COUNT_FILE); then lets it start at once (Slurm would hold it for ~2 minutes).
preempt() {
  wait_for 120 state_is RUNNING || fail "job $job did not start (state $(field JobState))"
  wait_for 120 checkpoint_after "$1" "$work/mark" || fail "no new checkpoint from job $job"
  log "checkpoint written; warning job $job"
  scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 failed"
  wait_for 120 state_is PENDING || fail "job $job was not requeued (state $(field JobState))"
  [ "$(field Restarts)" = "$2" ] || fail "job $job: Restarts=$(field Restarts), expected $2"
  # Released early, the job must not start before its last run has left the node (its job steps' slurmstepd):
  # a step launched meanwhile fails.
  wait_for 120 no_steps_left || fail "job $job's earlier steps did not end"
  [ $# -lt 3 ] || find "$1/checkpoints" -name '*.h5' | wc -l >"$3"
  log "job $job requeued ($(field Reason)); releasing it now"
  touch "$work/mark"
  scontrol update JobId="$job" StartTime=now || fail "cannot release job $job"
}
