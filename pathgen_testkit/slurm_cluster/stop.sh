#!/usr/bin/env bash
# Stop the daemons pathgen_testkit/slurm_cluster/start.sh started, by the PIDs it recorded (never by name).
# PID 1 in containers may not reap, so a killed daemon can linger as a zombie: state Z in
# /proc/PID/status counts as stopped.
set -uo pipefail
STATE=${PATHGEN_SLURM_STATE:-/tmp/pathgen-slurm}
[[ -f $STATE/pids ]] || exit 0

alive() { [[ -r /proc/$1/status ]] && ! grep -q '^State:.*Z' "/proc/$1/status"; }

# Cancel whatever is still queued or running (this cluster is ours alone) so no slurmstepd or
# job script outlives the daemons, then give the steps a moment to exit. Only while our
# slurmctld lives: a client call to a dead controller waits ~10 s before it gives up.
ctld=$(awk '$1 == "slurmctld" {print $2}' "$STATE/pids")
if command -v squeue >/dev/null && [[ $ctld =~ ^[0-9]+$ ]] && alive "$ctld"; then
    ids=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $ids ]]; then
        timeout 10 scancel --full $ids 2>/dev/null || true
        for _ in $(seq 50); do [[ -z $(timeout 5 squeue -h -t R,CG,PD -o %i 2>/dev/null) ]] && break; sleep 0.2; done
    fi
fi

# slurmd first, munged last (the slurm daemons need it to shut down cleanly).
mapfile -t lines < <(tac "$STATE/pids")
for line in "${lines[@]}"; do
    read -r name pid <<<"$line"
    [[ $pid =~ ^[0-9]+$ ]] || continue
    alive "$pid" || continue
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        echo "[slurm-stop] $name ($pid) needed SIGKILL" >&2
    fi
done
rm -f "$STATE/pids"
