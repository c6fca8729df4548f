"""Process environment the workflow's jobs need (called once from rules/common.smk)."""

from __future__ import annotations

import os


def put_checkout_on_pythonpath(basedir: str) -> None:
    """Rule scripts may run in conda envs (envs/*.yaml, `--sdm conda`) that do not have this
    checkout installed: prepend it to PYTHONPATH. Jobs inherit it (SLURM ones through
    sbatch --export=ALL). Not a user setting, so no `envvars:` assertion applies."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if basedir not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([basedir] + parts)
