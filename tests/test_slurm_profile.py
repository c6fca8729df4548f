"""The SLURM profile: valid keys, grouping block in sync with config.yaml, batch arithmetic."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pathgen.config import ConfigError, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm" / "config.yaml"


def make_profile():
    spec = importlib.util.spec_from_file_location("make_profile", REPO / "slurm" / "make_profile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_profile_keys_are_snakemake_options():
    prof = yaml.safe_load(PROFILE.read_text())
    assert prof["executor"] == "slurm"
    helptext = subprocess.run([sys.executable, "-m", "snakemake", "--help"], capture_output=True,
                              text=True, check=True).stdout
    unknown = [k for k in prof if f"--{k}" not in helptext]
    assert not unknown, f"slurm/config.yaml has keys snakemake does not know: {unknown}"


def test_profile_grouping_in_sync_with_config_yaml():
    proc = subprocess.run([sys.executable, str(REPO / "slurm" / "make_profile.py"), "--check",
                           "--config", str(REPO / "config.yaml")], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_rendered_block_matches_config(tmp_path):
    mp = make_profile()
    cfg = validate_config({"cluster": {"groups": {"tile": "slide", "extract_features": "slide"},
                                       "group_components": {"slide": 7}}})
    block = yaml.safe_load(mp.render_block(cfg))
    assert block == {"groups": ["tile=slide", "extract_features=slide"],
                     "group-components": ["slide=7"]}
    out = mp.replace_block("executor: slurm\n", mp.render_block(cfg))
    again = mp.replace_block(out, mp.render_block(cfg))
    assert out == again and out.startswith("executor: slurm\n")


def test_max_group_runtime_caps_batch():
    mp = make_profile()
    cfg = validate_config({
        "cluster": {"groups": {"tile": "slide", "extract_features": "slide"},
                    "group_components": {"slide": 50}, "max_group_runtime": 600},
        "resources": {"tile": {"runtime": 10}, "extract_features": {"runtime": 20}}})
    # 600 min / (10 + 20) min per slide = 20 slides per job
    assert mp.grouping(cfg)[1] == {"slide": 20}
    cfg.cluster.max_group_runtime = 5  # shorter than one slide -> still 1
    assert mp.grouping(cfg)[1] == {"slide": 1}


def test_make_profile_writes_a_copy(tmp_path):
    out = tmp_path / "prof"
    subprocess.run([sys.executable, str(REPO / "slurm" / "make_profile.py"), "--config",
                    str(REPO / "config.yaml"), "--set", "cluster.group_components.slide=3",
                    "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    prof = yaml.safe_load((out / "config.yaml").read_text())
    assert "slide=3" in prof["group-components"]
    assert (out / "vllm_server.sbatch").exists()
    assert PROFILE.read_text() != (out / "config.yaml").read_text()


def test_bad_cluster_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="group_components"):
        validate_config({"cluster": {"group_components": {"slide": 0}}})
    with pytest.raises(ConfigError, match="cluster.batch"):
        validate_config({"cluster": {"batch": 3}})


def test_repo_config_cluster_section_loads():
    cfg = load_config(REPO / "config.yaml")
    assert cfg.cluster.group_components["slide"] >= 1
