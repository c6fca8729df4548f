"""The SLURM profile: valid Snakemake keys, no job grouping, chunk arithmetic in the config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from pathgen.config import validate_config

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm" / "config.yaml"


def test_profile_keys_are_snakemake_options():
    prof = yaml.safe_load(PROFILE.read_text())
    assert prof["executor"] == "slurm"
    helptext = subprocess.run([sys.executable, "-m", "snakemake", "--help"], capture_output=True,
                              text=True, check=True).stdout
    unknown = [k for k in prof if f"--{k}" not in helptext]
    assert not unknown, f"slurm/config.yaml has keys snakemake does not know: {unknown}"


def test_profile_does_not_group_jobs():
    # Snakemake sums a group's resources (N slides -> N GPUs); chunks replace groups.
    prof = yaml.safe_load(PROFILE.read_text())
    assert "groups" not in prof and "group-components" not in prof


def test_chunk_walltime_cap():
    cfg = validate_config({"cluster": {"chunk_size": 500, "max_job_minutes": 2880},
                           "resources": {"extract_features": {"runtime": 45}}})
    assert cfg.chunk_size() == 2880 // 45
    cfg = validate_config({"cluster": {"max_job_minutes": 5}})  # shorter than one slide -> 1
    assert cfg.chunk_size() == 1
