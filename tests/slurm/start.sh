#!/usr/bin/env bash
# Start a real single-node SLURM (Debian packages: munge + slurmctld + slurmd) for the
# integration tests. Needs root. Idempotent: a cluster started by this script with the same
# config is reused; a different config restarts it. PIDs go to $PATHGEN_SLURM_STATE/pids so
# tests/slurm/stop.sh can stop exactly these daemons.
#
# Config follows slurm.conf(5) of Slurm 22.05: no cgroups (proctrack/linuxproc, task/none) so
# it runs in containers; no slurmdbd (status checks must use `--slurm-status-command squeue`,
# which needs MinJobAge >= 3 x the plugin's init seconds); fake GPUs are char devices aliasing
# /dev/null so `--gpus=N` is accepted and CUDA_VISIBLE_DEVICES is set.
#
# Env: PATHGEN_SLURM_STATE (default /tmp/pathgen-slurm), PATHGEN_SLURM_CPUS (default nproc),
#      PATHGEN_SLURM_GPUS (fake GPUs, default 2), PATHGEN_SLURM_PARTITION (default debug).
set -euo pipefail

STATE=${PATHGEN_SLURM_STATE:-/tmp/pathgen-slurm}
CPUS=${PATHGEN_SLURM_CPUS:-$(nproc)}
GPUS=${PATHGEN_SLURM_GPUS:-2}
PARTITION=${PATHGEN_SLURM_PARTITION:-debug}
NODE=$(hostname -s)
say() { echo "[slurm-start] $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    say "must run as root (installs packages, writes /etc/slurm, starts daemons)"; exit 2
fi
mkdir -p "$STATE"

# --- packages ------------------------------------------------------------------------
need=()
for bin in slurmctld slurmd sinfo munged; do
    command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
if ((${#need[@]})); then
    command -v apt-get >/dev/null || { say "apt-get not available and missing: ${need[*]}"; exit 3; }
    # Keep maintainer scripts from starting services (we start them ourselves, by PID).
    guard=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        guard=1
    fi
    say "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2
    ((guard)) && rm -f /usr/sbin/policy-rc.d
fi

# --- config --------------------------------------------------------------------------
mem_total=$(free -m | awk '/^Mem:/{print $2}')
REALMEM=$((mem_total > 2048 ? mem_total - 1024 : mem_total))
gres_line=""
if ((GPUS > 0)); then
    for ((i = 0; i < GPUS; i++)); do
        dev=/dev/pathgen-fakegpu$i
        [[ -e $dev ]] || mknod "$dev" c 1 3 2>/dev/null || touch "$dev"  # char dev = /dev/null
    done
    gres_line="Gres=gpu:$GPUS"
fi
conf=$(cat <<EOF
# written by pathgen tests/slurm/start.sh
ClusterName=pathgenci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
MinJobAge=300
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REALMEM $gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
gres=""
((GPUS > 0)) && gres="NodeName=$NODE Name=gpu File=/dev/pathgen-fakegpu[0-$((GPUS - 1))]"

alive() {  # running and not a zombie
    [[ -n ${1:-} && -r /proc/$1/status ]] && ! grep -q '^State:.*Z' "/proc/$1/status"
}
if [[ -f $STATE/pids && -f /etc/slurm/slurm.conf ]] && [[ "$(cat /etc/slurm/slurm.conf)" == "$conf" ]]; then
    ok=1
    while read -r name pid; do alive "$pid" || ok=0; done <"$STATE/pids"
    if ((ok)) && sinfo -h -N -o %T 2>/dev/null | grep -q idle; then
        say "already running (same config)"; exit 0
    fi
fi
[[ -f $STATE/pids ]] && "$(dirname "$0")/stop.sh" || true

mkdir -p /etc/slurm /var/spool/slurmd /var/log/slurm /run/slurm
rm -rf /var/spool/slurmctld && mkdir -p /var/spool/slurmctld   # clean job state
printf '%s\n' "$conf" >/etc/slurm/slurm.conf
printf '%s\n' "$gres" >/etc/slurm/gres.conf

# --- munge ---------------------------------------------------------------------------
mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
[[ -s /etc/munge/munge.key ]] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
rm -f /run/munge/munged.pid
runuser -u munge -- munged </dev/null >>"$STATE/munged.out" 2>&1

# --- slurm daemons (they daemonize and write their pid files) -------------------------
rm -f /run/slurm/slurmctld.pid /run/slurm/slurmd.pid
slurmctld </dev/null >>"$STATE/slurmctld.out" 2>&1
slurmd </dev/null >>"$STATE/slurmd.out" 2>&1

waitfile() { for _ in $(seq 100); do [[ -s $1 ]] && return 0; sleep 0.1; done; return 1; }
: >"$STATE/pids"
for pair in munged:/run/munge/munged.pid slurmctld:/run/slurm/slurmctld.pid slurmd:/run/slurm/slurmd.pid; do
    name=${pair%%:*}; pidfile=${pair#*:}
    waitfile "$pidfile" || { say "$name did not start; see $STATE/$name.out and /var/log/slurm"; exit 4; }
    echo "$name $(cat "$pidfile")" >>"$STATE/pids"
done

# --- wait for the node -----------------------------------------------------------------
for i in $(seq 150); do
    st=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    case $st in
        idle) say "up: node $NODE idle, $CPUS CPUs, $GPUS fake GPUs, ${REALMEM} MB (PIDs in $STATE/pids)"; exit 0 ;;
        *drain*|*down*|*inval*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
done
say "node $NODE not idle after 30 s (state: ${st:-none}); see /var/log/slurm/slurmd.log"
exit 5
