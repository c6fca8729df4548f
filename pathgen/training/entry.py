"""Launch target of torchrun and srun: register pathgen's model configs, then run open_clip's
own trainer.

``torchrun -m open_clip_train.main`` would not know architectures shipped in
pathgen/model_configs (e.g. ``pathgen-tiny-vit``), so multi-process runs go through this shim;
it registers configs and hands ``sys.argv`` to ``open_clip_train.main.main``.

Under ``srun`` (one task per GPU, see pathgen.training.argv.srun_command) open_clip takes rank,
world size and local rank from SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID and initialises
torch.distributed with ``env://``; this shim sets MASTER_ADDR (the first node of the step) and
MASTER_PORT (from the job and step ids, the same on every task) when they are not set, as
open_clip's README does in its sbatch script. A CPU run (``--device cpu``, gloo) also needs
DistributedDataParallel without ``device_ids``: open_clip passes ``[device]``, which DDP
refuses for CPU modules, so they are dropped there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .models import register_model_configs


def first_host(nodelist: str) -> str:
    """First host of a SLURM hostlist ("gpu[003-005,9],login1" -> "gpu003"): scontrol's
    answer, else parsed here."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0 and out.stdout.split():
            return out.stdout.split()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    m = re.match(r"([^,\[]*)(?:\[([^\],]+))?([^,\[]*)", nodelist.strip())
    prefix, ranges, _ = m.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split("-")[0]


def slurm_rendezvous(env: dict | os._Environ = os.environ) -> None:
    """MASTER_ADDR/MASTER_PORT for an srun task (not under torchrun, nor when already set)."""
    if "SLURM_PROCID" not in env or "RANK" in env:
        return
    if "MASTER_ADDR" not in env:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
        env["MASTER_ADDR"] = first_host(nodelist) if nodelist else "127.0.0.1"
    if "MASTER_PORT" not in env:
        job = int(env.get("SLURM_JOB_ID", "0") or 0)
        step = int(re.sub(r"\D", "", env.get("SLURM_STEP_ID", "0")) or 0)
        env["MASTER_PORT"] = str(20000 + (job * 31 + step) % 30000)


def allow_cpu_ddp() -> None:
    """Let open_clip wrap a CPU model in DDP (it passes device_ids=[cpu], which DDP refuses)."""
    import torch

    ddp = torch.nn.parallel.DistributedDataParallel
    if getattr(ddp, "_pathgen_cpu", False):
        return

    class CpuFriendlyDDP(ddp):
        _pathgen_cpu = True

        def __init__(self, module, device_ids=None, *args, **kwargs):
            if device_ids and all(torch.device(d).type == "cpu" for d in device_ids):
                device_ids = None
            super().__init__(module, device_ids, *args, **kwargs)

    torch.nn.parallel.DistributedDataParallel = CpuFriendlyDDP


def main() -> None:
    extra = [p for p in os.environ.get("PATHGEN_MODEL_CONFIGS", "").split(os.pathsep) if p]
    register_model_configs(extra)
    slurm_rendezvous()
    argv = sys.argv[1:]
    if "--device" in argv and argv[argv.index("--device") + 1] == "cpu":
        allow_cpu_ddp()
    from open_clip_train.main import main as open_clip_main

    rc = open_clip_main(argv)
    if rc not in (None, 0):
        sys.exit(rc)


if __name__ == "__main__":
    main()
