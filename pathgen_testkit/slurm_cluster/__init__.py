"""A real single-node SLURM for the SLURM integration test (tests/test_slurm.py).

`running_cluster()` (the conftest's session fixture `slurm_cluster`) runs start.sh beside this
file (apt-installs and starts munge + slurmctld + slurmd) and stops the daemons by PID
afterwards (stop.sh). It skips only when the test cannot possibly start a cluster (not root,
or SLURM missing and no apt-get); in CI (root) it must run.

The cluster has no slurmdbd, so `sacct` knows nothing: what SLURM was asked for is read from
slurmctld itself (`scontrol show job`, kept MinJobAge=3600 s after a job ends) and from the
job completion log (jobcomp/filetxt, one line per ended job, a rejected submission included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("PATHGEN_SLURM_STATE", "/tmp/pathgen-slurm"))
JOBCOMP_LOG = Path("/var/log/slurm/jobcomp.log")
MAX_MEM_MB, MAX_MINUTES = 4000, 120  # both partitions' MaxMemPerNode / MaxTime


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (installs SLURM with apt-get and starts its daemons)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is not available to install it"
    return None


def cluster_env(**extra: str) -> dict:
    """Environment for start.sh/stop.sh: the test cluster's size and limits."""
    # Four CPU slots on any host (config_overrides allows more than the real cores) so a few
    # chunk jobs run side by side; four fake GPUs and the node's memory, more than one job may
    # ask (partitions cap a job at 4000 MB and 120 min), so an over-ask still schedules and
    # shows in the job's request.
    return {**os.environ, "PATHGEN_SLURM_STATE": str(STATE),
            "PATHGEN_SLURM_CPUS": os.environ.get("PATHGEN_SLURM_CPUS", "4"),
            "PATHGEN_SLURM_GPUS": "4", "PATHGEN_SLURM_MAX_MEM": str(MAX_MEM_MB),
            "PATHGEN_SLURM_MAX_MINUTES": str(MAX_MINUTES), **extra}


def run_start_script(timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HERE / "start.sh")], env=cluster_env(**extra),
                          capture_output=True, text=True, timeout=timeout)


def skip_unless_cluster_possible() -> None:
    reason = _unavailable_reason()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold the machine's one SLURM: test files on other xdist workers that start or stop
    the daemons wait here (flock: released on exit, even on kill -9)."""
    import fcntl

    with open(Path("/tmp") / f"pathgen-slurm-{os.getuid()}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def running_cluster() -> Iterator[dict]:
    """Start the cluster (skip when impossible, fail when start.sh fails), yield its facts
    (start_seconds, state, log, max_mem_mb, max_minutes) and stop it; one at a time on this
    machine (:func:`exclusive`)."""
    skip_unless_cluster_possible()
    with exclusive():
        yield from _running_cluster()


def _running_cluster() -> Iterator[dict]:
    env = cluster_env()
    t0 = time.perf_counter()
    proc = run_start_script()
    if proc.returncode != 0:
        pytest.fail(f"{HERE / 'start.sh'} failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    info = {"start_seconds": time.perf_counter() - t0, "state": STATE, "log": proc.stderr,
            "max_mem_mb": MAX_MEM_MB, "max_minutes": MAX_MINUTES}
    try:
        yield info
    finally:
        subprocess.run(["bash", str(HERE / "stop.sh")], env=env, timeout=120)


def squeue_jobs() -> list[dict]:
    """All jobs slurmctld still remembers (MinJobAge=3600 keeps finished ones)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%j|%T"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        jid, name, state = line.strip().split("|")
        rows.append({"id": jid, "name": name, "state": state})
    return rows


def _records(text: str) -> list[dict]:
    import re

    return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in text.splitlines() if "=" in line]


def scontrol_jobs() -> list[dict]:
    """Every job slurmctld remembers, as `scontrol show job -o` Key=Value fields (JobId, JobName,
    JobState, Partition, TimeLimit, MinMemoryNode, NumCPUs, CPUs/Task, TresPerJob, Comment...)."""
    proc = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0 and "No jobs" not in proc.stdout + proc.stderr:
        raise RuntimeError(f"scontrol show job failed: {proc.stderr}")
    return [r for r in _records(proc.stdout) if "JobId" in r]


def jobcomp_records() -> list[dict]:
    """The job completion log (jobcomp/filetxt): JobId, Name, JobState, Partition, TimeLimit
    (minutes), Tres (allocated cpu/mem; no GRES without accounting), ExitCode..."""
    if not JOBCOMP_LOG.exists():
        return []
    return [r for r in _records(JOBCOMP_LOG.read_text()) if "JobId" in r]
