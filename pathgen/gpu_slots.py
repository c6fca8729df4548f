"""One GPU per job on a workstation with several GPUs (a local run, not SLURM).

``snakemake --cores 32 --resources gpu=4`` runs four GPU jobs at once, but Snakemake only
counts GPUs: it does not say which one a job gets, so with ``device: auto`` every job would
take ``cuda`` = device 0. A job therefore claims its devices here before CUDA starts: one lock
file per device under ``<results>/.gpu_slots/`` held with ``fcntl.flock`` (the kernel drops the
lock when the process ends, even on ``kill -9``; the files themselves stay and are harmless),
and ``CUDA_VISIBLE_DEVICES`` set to the claimed devices, so the job's ``cuda`` (``cuda:0``) is
its own GPU and a model server or ``torchrun`` it starts inherits the same devices.

API (stdlib only; importing this module does not import torch):

``visible_gpu_count(env=os.environ) -> int``
    GPUs this process may use, without importing torch: the entries of an already set
    ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``, else ``/proc/driver/nvidia/gpus``.
    ``PATHGEN_FAKE_GPU_COUNT=N`` replaces the machine's count (tests).

``claim_gpus(lock_dir, n=1, *, env=os.environ, timeout_s=None, poll_s=1.0) -> GpuClaim``
    Claim ``n`` free devices and set ``env["CUDA_VISIBLE_DEVICES"]`` to them (comma separated);
    a context manager, or call ``.release()`` (which restores the previous value). It claims
    nothing, and leaves ``env`` alone, when

    * SLURM placed the job: ``SLURM_JOB_ID`` together with ``CUDA_VISIBLE_DEVICES``,
      ``SLURM_JOB_GPUS`` or ``SLURM_STEP_GPUS`` (SLURM's choice is kept),
    * the machine has no GPU, or ``n`` is 0,
    * the devices were already claimed by this process or the job that started it (a model
      server, ``torchrun``): ``PATHGEN_GPU_CLAIMED`` equals ``CUDA_VISIBLE_DEVICES``.

    A ``CUDA_VISIBLE_DEVICES`` the user set (say ``5,7``) is the pool the slots are drawn from.
    When every device is taken it waits (logging once), polling every ``poll_s`` seconds, up to
    ``timeout_s`` (default ``PATHGEN_GPU_WAIT_S`` or 600 s), then raises RuntimeError naming the
    lock folder and the fix (``--resources gpu=N`` no larger than the GPU count). It raises at
    once when ``n`` is larger than the machine's GPU count.
    ``GpuClaim``: ``.devices`` (the claimed devices: physical indices, or the UUID strings of a
    user's ``CUDA_VISIBLE_DEVICES``; ``[]`` when nothing was claimed), ``.env_value`` (the
    ``CUDA_VISIBLE_DEVICES`` the job runs with, ``None`` when unset), ``.lock_dir``,
    ``.reason`` (why nothing was claimed), ``.release()``.

``gpu_lock_dir(results_dir) -> Path``
    ``results_dir / ".gpu_slots"``, the lock folder every job of a run shares.
    ``PATHGEN_GPU_LOCK_DIR`` (read by ``job_gpus``) names another folder, e.g. one that two
    runs with different results folders on the same machine share.

``job_gpus(sm, device="auto", *, n=None, timeout_s=None) -> GpuClaim``
    The one call a Snakemake script makes (``sm``: its ``snakemake`` object), before torch,
    vLLM or any other CUDA user starts::

        with job_gpus(snakemake, snakemake.params.settings["device"]):
            import torch  # ... the job

    It claims ``n`` devices (default: the rule's ``gpu`` resource, ``sm.resources.get("gpu", 0)``)
    only when that resource asks for a GPU and ``device`` would use CUDA: ``auto``, ``cuda`` or
    ``gpu``. ``cpu`` claims nothing, and so does a pinned ``cuda:N`` (the user chose the device;
    remapping it would change which GPU ``cuda:N`` means). The lock folder comes from the job's
    log (``<results>/logs/<rule>/<name>.log``, paths.Layout.log), so no config is read. A chunk
    job runs its slides one after another in one process: one claim around the whole chunk.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path

log = logging.getLogger(__name__)

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
FAKE_COUNT_ENV = "PATHGEN_FAKE_GPU_COUNT"
LOCK_DIR_ENV = "PATHGEN_GPU_LOCK_DIR"
CLAIMED_ENV = "PATHGEN_GPU_CLAIMED"  # the CUDA_VISIBLE_DEVICES a claim set (inherited by children)
WAIT_ENV = "PATHGEN_GPU_WAIT_S"
LOCK_DIR_NAME = ".gpu_slots"
DEFAULT_WAIT_S = 600.0
SLURM_GPU_VARS = (CUDA_VISIBLE_DEVICES, "SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
CUDA_DEVICES = ("auto", "cuda", "gpu")  # device settings that mean "a GPU, whichever"

_physical_count: int | None = None


def gpu_lock_dir(results_dir: str | os.PathLike) -> Path:
    """The lock folder of a run: one lock file per device (and host) in it."""
    return Path(results_dir) / LOCK_DIR_NAME


def parse_visible_devices(value: str) -> list[int | str]:
    """Entries of a CUDA_VISIBLE_DEVICES value, as CUDA reads it: comma separated, indices or
    UUIDs (GPU-..., MIG-...); the list ends at the first invalid entry ("" or "-1" = none)."""
    out: list[int | str] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item or item.startswith("-") or item.lower() == "nodevfiles":
            break
        out.append(int(item) if item.isdigit() else item)
    return out


def _count_physical() -> int:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
            if proc.returncode == 0:
                return sum(1 for line in proc.stdout.splitlines() if line.startswith("GPU "))
        except (OSError, subprocess.SubprocessError):
            pass
    proc_dir = Path("/proc/driver/nvidia/gpus")
    try:
        return sum(1 for _ in proc_dir.iterdir())
    except OSError:
        return 0


def _machine_devices(env) -> list[int | str]:
    """Devices this process may use: a set CUDA_VISIBLE_DEVICES, else 0..count-1."""
    if CUDA_VISIBLE_DEVICES in env:
        return parse_visible_devices(env[CUDA_VISIBLE_DEVICES])
    fake = env.get(FAKE_COUNT_ENV, "").strip()
    if fake:
        return list(range(max(0, int(fake))))
    global _physical_count
    if _physical_count is None:
        _physical_count = _count_physical()
    return list(range(_physical_count))


def visible_gpu_count(env=None) -> int:
    """How many GPUs this process may use, without importing torch (module docstring)."""
    return len(_machine_devices(os.environ if env is None else env))


def slurm_assigned(env) -> bool:
    """SLURM placed this job and chose its GPUs (or chose none): keep that, claim nothing."""
    return bool(env.get("SLURM_JOB_ID")) and any(v in env for v in SLURM_GPU_VARS)


def _lock_name(device: int | str) -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname() or "host")
    return f"{host}.gpu{re.sub(r'[^A-Za-z0-9._-]', '_', str(device))}.lock"


class GpuClaim:
    """Devices held by this process (see the module docstring)."""

    def __init__(self, lock_dir: Path | None, env: MutableMapping[str, str], devices=(), fds=(),
                 reason: str = ""):
        self.lock_dir = lock_dir
        self.devices: list[int | str] = list(devices)
        self.reason = reason
        self._env = env
        self._fds = list(fds)
        self._previous = {k: env.get(k) for k in (CUDA_VISIBLE_DEVICES, CLAIMED_ENV)}
        if self.devices:
            env[CUDA_VISIBLE_DEVICES] = env[CLAIMED_ENV] = ",".join(str(d) for d in self.devices)
        self.env_value: str | None = env.get(CUDA_VISIBLE_DEVICES)

    @property
    def claimed(self) -> bool:
        return bool(self._fds)

    def release(self) -> None:
        """Drop the locks and put CUDA_VISIBLE_DEVICES back as it was (twice is harmless)."""
        if not self._fds:
            return
        for fd in self._fds:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._fds = []
        if self._env.get(CUDA_VISIBLE_DEVICES) == self.env_value:  # unless someone changed it since
            for key, value in self._previous.items():
                if value is None:
                    self._env.pop(key, None)
                else:
                    self._env[key] = value
        log.info("GPU slot(s) %s released", self.env_value)

    def __enter__(self) -> GpuClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        what = f"devices={self.devices}" if self.devices else f"nothing ({self.reason})"
        return f"GpuClaim({what}, CUDA_VISIBLE_DEVICES={self.env_value!r})"


def _try_lock(path: Path, device) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)  # who holds it, for a person looking at the folder
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, device {device}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    return fd


def _release_fds(fds: list[int]) -> None:
    for fd in fds:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _wait_limit(timeout_s: float | None, env) -> float:
    if timeout_s is not None:
        return float(timeout_s)
    raw = env.get(WAIT_ENV, "").strip()
    return float(raw) if raw else DEFAULT_WAIT_S


def claim_gpus(lock_dir: str | os.PathLike, n: int = 1, *, env: MutableMapping[str, str] | None = None,
               timeout_s: float | None = None, poll_s: float = 1.0) -> GpuClaim:
    """Claim ``n`` free devices of this machine for this process (module docstring)."""
    env = os.environ if env is None else env
    lock_dir = Path(lock_dir)
    if n <= 0:
        return GpuClaim(lock_dir, env, reason="no GPU asked for")
    if slurm_assigned(env):
        return GpuClaim(lock_dir, env, reason="SLURM assigned the devices")
    if env.get(CLAIMED_ENV) is not None and env.get(CLAIMED_ENV) == env.get(CUDA_VISIBLE_DEVICES):
        return GpuClaim(lock_dir, env, reason="the devices are already claimed by this job")
    pool = _machine_devices(env)
    if not pool:
        return GpuClaim(lock_dir, env, reason="no GPU on this machine")
    if n > len(pool):
        raise RuntimeError(f"this job needs {n} GPUs but this machine has {len(pool)} "
                           f"({', '.join(map(str, pool))}): lower the rule's gpu resource or the "
                           "job's GPU setting")
    lock_dir.mkdir(parents=True, exist_ok=True)
    limit = _wait_limit(timeout_s, env)
    start, waiting = time.monotonic(), False
    while True:
        fds, devices = [], []
        for device in pool:
            fd = _try_lock(lock_dir / _lock_name(device), device)
            if fd is not None:
                fds.append(fd)
                devices.append(device)
                if len(fds) == n:
                    break
        if len(fds) == n:
            claim = GpuClaim(lock_dir, env, devices, fds)
            log.info("GPU slot(s) claimed: CUDA_VISIBLE_DEVICES=%s (locks in %s)", claim.env_value, lock_dir)
            return claim
        _release_fds(fds)  # never sit on part of a claim while waiting: others may finish
        waited = time.monotonic() - start
        if waited >= limit:
            raise RuntimeError(
                f"no free GPU after {waited:.0f} s: this job needs {n} of the {len(pool)} GPUs "
                f"({', '.join(map(str, pool))}), all held by other jobs (lock files in {lock_dir}). "
                f"Run Snakemake with --resources gpu=N no larger than the GPU count ({len(pool)}), "
                f"or raise {WAIT_ENV} if another run shares this machine's GPUs.")
        if not waiting:
            log.warning("all %d GPUs are taken by other jobs (locks in %s): waiting up to %.0f s for %d",
                        len(pool), lock_dir, limit, n)
            waiting = True
        time.sleep(min(poll_s, max(0.01, limit - waited)))


def wants_cuda(device: str | None) -> bool:
    """Whether a device setting means "a GPU, whichever": auto/cuda/gpu (not cpu, not cuda:N)."""
    return str(device or "auto").strip().lower() in CUDA_DEVICES


def job_resource_gpus(sm) -> int:
    """The rule's ``gpu`` resource (0 when it has none)."""
    resources = getattr(sm, "resources", None)
    if resources is None:
        return 0
    getter = getattr(resources, "get", None)
    value = getter("gpu", 0) if callable(getter) else getattr(resources, "gpu", 0)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def job_lock_dir(sm, env=None) -> Path:
    """The run's lock folder, from the job's log file (<results>/logs/<rule>/<name>.log);
    PATHGEN_GPU_LOCK_DIR overrides it."""
    env = os.environ if env is None else env
    if env.get(LOCK_DIR_ENV):
        return Path(env[LOCK_DIR_ENV])
    logs = list(getattr(sm, "log", None) or [])
    if logs:
        p = Path(str(logs[0]))
        if len(p.parents) >= 3 and p.parent.parent.name == "logs":
            return gpu_lock_dir(p.parents[2])
    # A job without the usual log layout: one machine-wide folder of this user.
    return Path(tempfile.gettempdir()) / f"pathgen-gpu-slots-{os.getuid()}"


def job_gpus(sm, device: str | None = "auto", *, n: int | None = None,
             timeout_s: float | None = None) -> GpuClaim:
    """Claim a Snakemake job's GPUs (module docstring); ``n`` defaults to its gpu resource."""
    env = os.environ
    asked = job_resource_gpus(sm)
    want = asked if n is None else int(n)
    if asked <= 0 or want <= 0:
        return GpuClaim(None, env, reason="the job asks for no GPU")
    if not wants_cuda(device):
        return GpuClaim(None, env, reason=f"device {device!r} (not auto/cuda)")
    if want > asked:
        log.warning("this job uses %d GPUs but its rule reserves %d (resources gpu): raise the "
                    "rule's gpu resource so Snakemake counts them all", want, asked)
    return claim_gpus(job_lock_dir(sm, env), want, env=env, timeout_s=timeout_s)
