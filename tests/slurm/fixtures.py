"""pytest fixtures for the SLURM integration test: a real single-node SLURM for the session.

`slurm_cluster` runs tests/slurm/start.sh (apt-installs and starts munge + slurmctld + slurmd)
and stops the daemons by PID afterwards (tests/slurm/stop.sh). It skips only when the test
cannot possibly start a cluster (not root, or SLURM missing and no apt-get); in CI (root) it
must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("PATHGEN_SLURM_STATE", "/tmp/pathgen-slurm"))


def _unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (installs SLURM with apt-get and starts its daemons)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is not available to install it"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = _unavailable_reason()
    if reason:
        pytest.skip(reason)
    # Four CPU slots on any host (config_overrides allows more than the real cores) so two
    # group jobs can run side by side; two fake GPUs.
    env = {**os.environ, "PATHGEN_SLURM_STATE": str(STATE),
           "PATHGEN_SLURM_CPUS": os.environ.get("PATHGEN_SLURM_CPUS", "4"),
           "PATHGEN_SLURM_GPUS": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(HERE / "start.sh")], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"tests/slurm/start.sh failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    info = {"start_seconds": time.perf_counter() - t0, "state": STATE}
    try:
        yield info
    finally:
        subprocess.run(["bash", str(HERE / "stop.sh")], env=env, timeout=120)


def squeue_jobs() -> list[dict]:
    """All jobs slurmctld still remembers (MinJobAge=300 keeps finished ones)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%j|%T"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        jid, name, state = line.strip().split("|")
        rows.append({"id": jid, "name": name, "state": state})
    return rows
