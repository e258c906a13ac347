#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on loopback, for mdkeep's Slurm runner
# tests and for trying the runner on one box. No accounting database: finished
# jobs are read from the jobcomp file (sacct -c).
#
#   scripts/slurm_cluster.sh start DIR [MEM_MB]   then: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm_cluster.sh stop DIR
#
# Needs root and: apt-get install -y --no-install-recommends slurm-wlm slurmctld slurmd slurm-client munge
# Memory is enforced with cgroup v1 (ConstrainRAMSpace): a job past its --mem ends OUT_OF_MEMORY.
set -euo pipefail
cmd=${1:?usage: slurm_cluster.sh start|stop DIR [MEM_MB]}
DIR=$(realpath -m "${2:?usage: slurm_cluster.sh start|stop DIR [MEM_MB]}")
MEM=${3:-1000}

stop() {
  for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
    [ -f "$f" ] || continue
    p=$(cat "$f"); kill "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
}

if [ "$cmd" = stop ]; then stop; echo "slurm stopped"; exit 0; fi
[ "$cmd" = start ] || { echo "usage: slurm_cluster.sh start|stop DIR [MEM_MB]" >&2; exit 2; }
command -v slurmctld >/dev/null || { echo "slurmctld not installed" >&2; exit 3; }
stop
mkdir -p "$DIR"/{state,spool,log}
host=$(hostname -s)
cat > "$DIR/slurm.conf" <<CONF
ClusterName=mdkeep-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
MinJobAge=300
KillWait=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$DIR/cgroup.conf" <<CONF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
ConstrainCores=no
ConstrainDevices=no
CONF
export SLURM_CONF=$DIR/slurm.conf
wait_for() { for _ in $(seq 300); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timeout: $1" >&2; exit 1; }
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if [ ! -f /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
munge -n >/dev/null 2>&1 || runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
wait_for 'munge -n'
setsid slurmctld -D -f "$SLURM_CONF" >"$DIR/log/slurmctld.out" 2>&1 </dev/null &
setsid slurmd -D -f "$SLURM_CONF" >"$DIR/log/slurmd.out" 2>&1 </dev/null &
wait_for '[ "$(sinfo -h -o %T)" = idle ]'
echo "cluster up: export SLURM_CONF=$SLURM_CONF"
