#!/usr/bin/env bash
# Start a real single-node SLURM (Debian packages: munge + slurmctld + slurmd) for the
# integration tests. Needs root. Idempotent: a cluster started by this script with the same
# config is reused; a different config restarts it. PIDs go to $PATHGEN_SLURM_STATE/pids so
# pathgen_testkit/slurm_cluster/stop.sh can stop exactly these daemons.
#
# Config follows slurm.conf(5) of Slurm 22.05: no cgroups (proctrack/linuxproc, task/none) so
# it runs in containers; no slurmdbd (status checks must use `slurm-status-command: squeue`,
# which needs MinJobAge >= 3 x the plugin's init seconds; MinJobAge=3600 also keeps every
# finished job in `scontrol show job` for the test's assertions); jobcomp/filetxt logs each
# finished job to /var/log/slurm/jobcomp.log.
#
# Two partitions on the one node: `cpu` (default) and `gpu`. The node carries a GRES of fake
# GPUs: char devices aliasing /dev/null listed in gres.conf with AutoDetect=off, so `--gpus=N`
# is accepted and CUDA_VISIBLE_DEVICES is set. Both partitions cap a job at
# PATHGEN_SLURM_MAX_MEM MB and PATHGEN_SLURM_MAX_MINUTES (EnforcePartLimits=ALL: sbatch
# rejects an over-ask at once with the reason); the node has more memory and GPUs than one
# job may ask, so an over-ask that slips through is visible in the job's request.
#
# Env: PATHGEN_SLURM_STATE (default /tmp/pathgen-slurm), PATHGEN_SLURM_CPUS (CPU slots,
#      default nproc), PATHGEN_SLURM_GPUS (fake GPUs, default 4; 0 = no GRES, route by
#      partition only), PATHGEN_SLURM_MAX_MEM (default 4000), PATHGEN_SLURM_MAX_MINUTES
#      (default 120), PATHGEN_SLURM_EXTRA_CONF (lines appended to slurm.conf, e.g. to try a
#      setting; tests/test_slurm.py uses it to check that a dying daemon fails this fast).
set -euo pipefail

STATE=${PATHGEN_SLURM_STATE:-/tmp/pathgen-slurm}
CPUS=${PATHGEN_SLURM_CPUS:-$(nproc)}
GPUS=${PATHGEN_SLURM_GPUS:-4}
MAX_MEM=${PATHGEN_SLURM_MAX_MEM:-4000}
MAX_MIN=${PATHGEN_SLURM_MAX_MINUTES:-120}
NODE=$(hostname -s)
LOGDIR=/var/log/slurm
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
((MAX_MEM > REALMEM)) && MAX_MEM=$REALMEM
gres_line=""
if ((GPUS > 0)); then
    for ((i = 0; i < GPUS; i++)); do
        dev=/dev/pathgen-fakegpu$i
        [[ -e $dev ]] || mknod "$dev" c 1 3 2>/dev/null || touch "$dev"  # char dev = /dev/null
    done
    gres_line="Gres=gpu:$GPUS"
fi
limits="MaxTime=$MAX_MIN MaxMemPerNode=$MAX_MEM DefaultTime=10 State=UP"
conf=$(cat <<EOF
# written by pathgen_testkit/slurm_cluster/start.sh (pathgen tests)
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
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
MinJobAge=3600
EnforcePartLimits=ALL
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REALMEM $gres_line State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES $limits
PartitionName=gpu Nodes=$NODE Default=NO $limits
${PATHGEN_SLURM_EXTRA_CONF:-}
EOF
)
gres="AutoDetect=off"
((GPUS > 0)) && gres+=$'\n'"NodeName=$NODE Name=gpu File=/dev/pathgen-fakegpu[0-$((GPUS - 1))]"

alive() {  # running and not a zombie (PID 1 here may not reap)
    [[ -n ${1:-} && -r /proc/$1/status ]] && ! grep -q '^State:.*Z' "/proc/$1/status"
}
node_state() { timeout 3 sinfo -h -N -o %T 2>/dev/null | head -1 || true; }
if [[ -f $STATE/pids && -f /etc/slurm/slurm.conf && -f /etc/slurm/gres.conf ]] \
        && [[ "$(cat /etc/slurm/slurm.conf)" == "$conf" && "$(cat /etc/slurm/gres.conf)" == "$gres" ]]; then
    ok=1
    while read -r name pid; do alive "$pid" || ok=0; done <"$STATE/pids"
    if ((ok)) && [[ $(node_state) == idle* ]]; then
        say "already running (same config)"; exit 0
    fi
fi
[[ -f $STATE/pids ]] && "$(dirname "$0")/stop.sh" || true

mkdir -p /etc/slurm /var/spool/slurmd "$LOGDIR" /run/slurm
rm -rf /var/spool/slurmctld && mkdir -p /var/spool/slurmctld   # clean job state
printf '%s\n' "$conf" >/etc/slurm/slurm.conf
printf '%s\n' "$gres" >/etc/slurm/gres.conf
# Fresh logs per start, so a failure below shows this start's lines only.
: >"$LOGDIR/slurmctld.log"; : >"$LOGDIR/slurmd.log"; : >"$LOGDIR/jobcomp.log"
: >"$STATE/munged.out"; : >"$STATE/slurmctld.out"; : >"$STATE/slurmd.out"

# --- munge ---------------------------------------------------------------------------
mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
[[ -s /etc/munge/munge.key ]] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
rm -f /run/munge/munged.pid
: >"$STATE/pids"

declare -A LOG=([munged]=/var/log/munge/munged.log [slurmctld]=$LOGDIR/slurmctld.log
                [slurmd]=$LOGDIR/slurmd.log)
die_daemon() {  # name why: print the daemon's own output and log tail, stop the rest, fail
    say "$1 $2"
    for f in "$STATE/$1.out" "${LOG[$1]}"; do
        [[ -s $f ]] && { say "--- tail of $f"; tail -n 25 "$f" >&2; }
    done
    "$(dirname "$0")/stop.sh" || true
    exit 4
}
waitpidfile() {  # name pidfile: the daemon forks; wait (<= 10 s) for its live pid, fail at once
    local pid                   # when the pid is dead or the daemon logged a fatal error
    for _ in $(seq 100); do
        if [[ -s $2 ]]; then
            pid=$(cat "$2")
            alive "$pid" && { echo "$1 $pid" >>"$STATE/pids"; return 0; }
            die_daemon "$1" "died right after start (pid $pid)"
        fi
        grep -qs 'fatal:' "$STATE/$1.out" "${LOG[$1]}" && die_daemon "$1" "died at start (fatal error)"
        sleep 0.1
    done
    die_daemon "$1" "did not start (no pid in $2 after 10 s)"
}

runuser -u munge -- munged </dev/null >>"$STATE/munged.out" 2>&1 || die_daemon munged "exited with $?"
waitpidfile munged /run/munge/munged.pid
# --- slurm daemons (they daemonize and write their pid files) -------------------------
rm -f /run/slurm/slurmctld.pid /run/slurm/slurmd.pid
slurmctld </dev/null >>"$STATE/slurmctld.out" 2>&1 || die_daemon slurmctld "exited with $?"
waitpidfile slurmctld /run/slurm/slurmctld.pid
slurmd </dev/null >>"$STATE/slurmd.out" 2>&1 || die_daemon slurmd "exited with $?"
waitpidfile slurmd /run/slurm/slurmd.pid

# --- wait for the node (fail fast when a daemon dies: it never comes up then) ------------
st=""
for _ in $(seq 60); do
    while read -r name pid; do
        alive "$pid" || die_daemon "$name" "died while waiting for the node (pid $pid)"
    done <"$STATE/pids"
    st=$(node_state)
    case $st in
        idle*) say "up: node $NODE idle, $CPUS CPUs, $GPUS fake GPUs, ${REALMEM} MB; partitions cpu (default), gpu: MaxTime=${MAX_MIN} min, MaxMemPerNode=${MAX_MEM} MB (PIDs in $STATE/pids)"
               exit 0 ;;
        *drain*|*down*|*inval*) timeout 3 scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.25
done
say "node $NODE not idle after ~20 s (state: ${st:-none})"
die_daemon slurmd "node never became idle"
