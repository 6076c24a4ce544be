#!/usr/bin/env bash
# A Slurm cluster on this machine, from Debian's packages (slurmctld, slurmd, slurm-client, munge, iproute2), to
# run slurm/gradfit.sbatch and slurm/gradfit-multinode.sbatch against a real Slurm (tests/slurm). Needs root; works
# without systemd or cgroups.
#   slurm/local_cluster.sh start [--nodes K]   installs what is missing, writes /etc/slurm/slurm.conf, starts the
#                                              daemons. K = 1 (the default): this host is the node. K >= 2: nodes
#                                              gf-node1..K, each a network namespace of its own (address 10.77.0.i
#                                              on a bridge, its own hostname) with its own slurmd
#   slurm/local_cluster.sh stop                stops the daemons this script started and removes its nodes
# Namespace nodes share this machine's cores, memory and filesystem (as a cluster shares its filesystem) but talk
# over TCP, as nodes do: MPI between them goes over the network, not shared memory.
# It never touches a Slurm it did not configure: when /etc/slurm/slurm.conf exists without this script's mark, it
# exits with code 3 and changes nothing.
set -euo pipefail

readonly kMark="# written by gradfit_dist slurm/local_cluster.sh"
readonly kConf=/etc/slurm/slurm.conf
readonly kBridge=gfbr0 kSubnet=10.77.0 kNodeRoot=/var/tmp/gradfit-cluster

die() {
  echo "local_cluster.sh: $*" >&2
  exit 1
}

install_packages() {
  local missing=()
  for p in slurmctld slurmd slurm-client munge iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "local_cluster.sh: installing ${missing[*]}"
  apt-get update -qq
  # No init system starts the daemons here (policy-rc.d says no): this script does.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# slurm.conf: this host as the only node (K = 1), or K namespace nodes and slurmctld on the bridge's address. Each
# node claims all the CPUs and its share of 80 % of the memory free now (Slurm drains a node that has less
# RealMemory than it claims).
write_config() {
  local nodes=$1 host cpus memory
  host=$(hostname -s)
  cpus=$(nproc)
  memory=$(awk -v k="$nodes" '/MemAvailable/ {printf "%d", $2 / 1024 * 0.8 / k}' /proc/meminfo)
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
  local ctld=$host spool=/var/spool/slurmd pid=/run/slurm/slurmd.pid log=/var/log/slurm/slurmd.log tmp=/tmp
  local node_list=$host node_addr=""
  if [ "$nodes" -gt 1 ]; then
    ctld="$host($kSubnet.254)"
    spool=/var/spool/slurmd/%n pid=/run/slurm/slurmd-%n.pid log=/var/log/slurm/slurmd-%n.log tmp=$kNodeRoot/%n
    node_list="gf-node[1-$nodes]" node_addr="NodeAddr=$kSubnet.[1-$nodes] "
  fi
  cat >"$kConf" <<EOF
$kMark
# nodes=$nodes
ClusterName=gradfit-local
SlurmctldHost=$ctld
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=$spool
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=$pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=$log
TmpFS=$tmp
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
NodeName=$node_list ${node_addr}CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node_list Default=YES MaxTime=INFINITE State=UP
EOF
}

# The node count of this script's configuration (0: there is none).
configured_nodes() {
  if [ ! -e "$kConf" ] || ! grep -qxF "$kMark" "$kConf"; then
    echo 0
    return
  fi
  local n
  n=$(sed -n 's/^# nodes=\([0-9]*\)$/\1/p' "$kConf")
  echo "${n:-1}"
}

# Node i: network namespace gf-node$i, a veth pair from it to the bridge, address $kSubnet.i, and a TmpFS folder of
# its own (Slurm's PMIx plugin keeps per-node files there under names that do not say the node).
make_nodes() {
  local nodes=$1 i
  remove_nodes
  ip link add "$kBridge" type bridge
  ip addr add "$kSubnet.254/24" dev "$kBridge"
  ip link set "$kBridge" up
  for i in $(seq "$nodes"); do
    ip netns add "gf-node$i"
    ip link add "gfveth$i" type veth peer name eth0 netns "gf-node$i"
    ip link set "gfveth$i" master "$kBridge"
    ip link set "gfveth$i" up
    ip -n "gf-node$i" addr add "$kSubnet.$i/24" dev eth0
    ip -n "gf-node$i" link set eth0 up
    ip -n "gf-node$i" link set lo up
    mkdir -p "$kNodeRoot/gf-node$i" "/var/spool/slurmd/gf-node$i"
    chmod 1777 "$kNodeRoot/gf-node$i"
  done
}

remove_nodes() {
  local ns veth
  # `ip netns list` may go on naming a namespace whose file is gone (seen here after a stop): not an error.
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^gf-node[0-9]+$/ {print $1}'); do
    ip netns del "$ns" 2>/dev/null || true
  done
  # A namespace may outlive its name for a while, and its veth pair with it: delete them now.
  for veth in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^gfveth[0-9]+@/ {sub(/@.*/, "", $2); print $2}'); do
    ip link del "$veth" 2>/dev/null || true
  done
  if ip link show "$kBridge" >/dev/null 2>&1; then ip link del "$kBridge"; fi
  rm -rf "$kNodeRoot"
}

# One slurmd per node, inside the node's network namespace (entered with nsenter: `ip netns exec` remounts /sys,
# which hides the cgroup filesystem slurmd looks for), with the node's hostname.
start_slurmds() {
  local nodes=$1 i
  if [ "$nodes" -eq 1 ]; then
    slurmd
    return
  fi
  for i in $(seq "$nodes"); do
    nsenter --net="/run/netns/gf-node$i" unshare --uts sh -c "hostname gf-node$i && exec slurmd -N gf-node$i"
  done
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

# Waits up to 60 s for all `nodes` nodes to take jobs.
wait_for_nodes() {
  local nodes=$1
  for _ in $(seq 120); do
    [ "$(sinfo -h -N -o %T 2>/dev/null | grep -cE '^(idle|mixed|allocated)$')" -eq "$nodes" ] && return
    sleep 0.5
  done
  die "the nodes did not come up (states: $(sinfo -h -N -o '%N %T' 2>/dev/null | xargs); see" \
    "/var/log/slurm/slurmctld.log and slurmd*.log)"
}

stop_daemons() {
  local daemon
  for daemon in slurmd slurmctld munged; do
    pkill -x "$daemon" || continue
    for _ in $(seq 100); do pgrep -x "$daemon" >/dev/null || break; sleep 0.1; done
  done
  remove_nodes
}

start() {
  local nodes=$1
  [ "$(id -u)" -eq 0 ] || die "needs root"
  if [ -e "$kConf" ] && ! grep -qxF "$kMark" "$kConf"; then
    echo "local_cluster.sh: $kConf exists and is not this script's; leaving that Slurm alone" >&2
    exit 3
  fi
  # Another shape of this script's cluster is stopped first.
  if [ "$(configured_nodes)" != "$nodes" ] && pgrep -x slurmctld >/dev/null; then stop_daemons; fi
  install_packages
  write_config "$nodes"
  start_munge
  if ! pgrep -x slurmd >/dev/null; then
    [ "$nodes" -eq 1 ] || make_nodes "$nodes"
    start_slurmds "$nodes"
  fi
  pgrep -x slurmctld >/dev/null || slurmctld
  wait_for_nodes "$nodes"
  local node
  for node in $(sinfo -h -N -o %N); do  # after an unclean stop
    scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
  done
  echo "local_cluster.sh: Slurm up: $(sinfo -h -o '%D node(s) %N, %c CPUs each, %T')"
}

stop() {
  [ "$(configured_nodes)" != 0 ] || die "no cluster of this script to stop"
  stop_daemons
  echo "local_cluster.sh: stopped"
}

usage="usage: slurm/local_cluster.sh start [--nodes K] | stop"
case "${1:-}" in
  start)
    nodes=1
    if [ $# -gt 1 ]; then
      [ $# -eq 3 ] && [ "$2" = --nodes ] || die "$usage"
      nodes=$3
    fi
    [[ "$nodes" =~ ^[1-9][0-9]*$ ]] && [ "$nodes" -le 250 ] || die "--nodes: '$nodes' is not a node count from 1 to 250"
    start "$nodes"
    ;;
  stop)
    [ $# -eq 1 ] || die "$usage"
    stop
    ;;
  *) die "$usage" ;;
esac
