#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages (slurmctld, slurmd, slurm-client, munge), to run
# slurm/gradfit.sbatch against a real Slurm (tests/slurm). Needs root; works without systemd or cgroups.
#   slurm/local_cluster.sh start    installs what is missing, writes /etc/slurm/slurm.conf, starts the daemons
#   slurm/local_cluster.sh stop     stops the daemons this script started
# It never touches a Slurm it did not configure: when /etc/slurm/slurm.conf exists without this script's mark, it
# exits with code 3 and changes nothing.
set -euo pipefail

readonly kMark="# written by gradfit_dist slurm/local_cluster.sh"
readonly kConf=/etc/slurm/slurm.conf

die() {
  echo "local_cluster.sh: $*" >&2
  exit 1
}

install_packages() {
  local missing=()
  for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "local_cluster.sh: installing ${missing[*]}"
  apt-get update -qq
  # No init system starts the daemons here (policy-rc.d says no): this script does.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# This host as the only node: its CPUs, and 80 % of the memory free now (Slurm drains a node that has less
# RealMemory than it claims).
write_config() {
  local host cpus memory
  host=$(hostname -s)
  cpus=$(nproc)
  memory=$(awk '/MemAvailable/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
  cat >"$kConf" <<EOF
$kMark
ClusterName=gradfit-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
JobRequeue=1
ReturnToService=2
KillWait=30
MinJobAge=600
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  munge -n >/dev/null 2>&1 && return
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && return; sleep 0.1; done
  die "munged did not start"
}

# Waits up to 60 s for the node to take jobs.
wait_for_node() {
  local state=""
  for _ in $(seq 120); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1)
    case "$state" in idle | mixed | allocated) return ;; esac
    sleep 0.5
  done
  die "the node did not come up (state '$state'; see /var/log/slurm/slurmctld.log and slurmd.log)"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "needs root"
  if [ -e "$kConf" ] && ! grep -qxF "$kMark" "$kConf"; then
    echo "local_cluster.sh: $kConf exists and is not this script's; leaving that Slurm alone" >&2
    exit 3
  fi
  install_packages
  write_config
  start_munge
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  wait_for_node
  scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true  # after an unclean stop
  echo "local_cluster.sh: one-node Slurm up: $(sinfo -h -o '%P %D node %c CPUs %T')"
}

stop() {
  [ -e "$kConf" ] && grep -qxF "$kMark" "$kConf" || die "no cluster of this script to stop"
  local daemon
  for daemon in slurmd slurmctld munged; do
    pkill -x "$daemon" || continue
    for _ in $(seq 100); do pgrep -x "$daemon" >/dev/null || break; sleep 0.1; done
  done
  echo "local_cluster.sh: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: slurm/local_cluster.sh start | stop" ;;
esac
