"""SLURM integration: the real workflow through a real (single-node) SLURM with the repo profile.

Starts munge/slurmctld/slurmd (tests/slurm/start.sh, via the session fixture), runs the
per-slide stages (demo slides -> tiles -> features, whichever exist) with
`--profile slurm` on three tiny demo slides, proves the jobs went through SLURM (squeue
remembers them under this run's job name, their SLURM logs exist, the group batching made
fewer submissions than slides), and checks the outputs equal a local run's: coords exactly,
features within float tolerance.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from fixtures import slurm_cluster, squeue_jobs  # noqa: E402,F401
from workspace import REPO, Workspace, write_real_slides  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PER_SLIDE = ["make_demo_slide", "tile", "extract_features"]
SMALL = {"mem_mb": 1000, "runtime": 10, "threads": 1}


def small_config(root: Path, slides_dir: Path | None) -> dict:
    """Three tiny demo slides, or (while the demo rules are absent) three small real SVS."""
    inputs = ({"demo": {"enabled": False}, "slides": {"dir": str(slides_dir)}} if slides_dir else
              {"demo": {"enabled": True, "out_dir": str(root / "demo"), "n_slides": 3,
                        "width_px": 1024, "height_px": 768, "seed": 3}})
    return {
        "results_dir": str(root / "results"),
        **inputs,
        "features": {"encoder": "tiny-demo", "batch_size": 32, "num_workers": 0, "device": "cpu"},
        # Tiny memory asks so two group jobs fit the test node side by side; the GPU rule
        # still asks for a (fake) GPU so `--gpus` goes through sbatch.
        "resources": {"make_demo_slide": SMALL, "tile": SMALL, "demo_labels": SMALL,
                      "extract_features": {**SMALL, "gpu": 1}},
        # 3 slides in batches of 2 -> 2 group submissions instead of up to 9 jobs.
        "cluster": {"group_components": {"slide": 2, "caption": 2}},
    }


def h5(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


def test_workflow_through_slurm_matches_local(slurm_cluster, tmp_path):
    t_start = time.perf_counter()
    from pathgen.config import load_config
    from pathgen.paths import Layout
    from pathgen.slides import list_slides

    probe = Workspace(tmp_path / "probe")
    probe.write_config(**small_config(probe.root, None))
    rules = probe.list_rules()
    present = [r for r in PER_SLIDE if r in rules]
    if "tile" not in present:
        pytest.skip(f"no per-slide stage in the workflow yet (rules: {rules})")
    slides_dir = None
    if "make_demo_slide" not in present:
        slides_dir = tmp_path / "slides"
        write_real_slides(slides_dir, 3, size=1024)

    def targets(ws: Workspace) -> list[str]:
        cfg = load_config(ws.config_path)
        lay = Layout(cfg)
        last = lay.features if "extract_features" in present else lay.coords
        return [str(last(s)) for s in list_slides(cfg)]

    local = Workspace(tmp_path / "local")
    local.write_config(**small_config(local.root, slides_dir))
    # The local reference run goes on while the SLURM run mostly waits on polling.
    t0 = time.perf_counter()
    local_proc = local.start("--cores", "1", *targets(local), timeout=480)

    cl = Workspace(tmp_path / "slurm")
    cl.write_config(**small_config(cl.root, slides_dir))
    # The repo profile with its grouping block regenerated from this run's cluster config.
    profile = tmp_path / "profile"
    subprocess.run([sys.executable, str(REPO / "slurm" / "make_profile.py"), "--config",
                    str(cl.config_path), "--out", str(profile)], check=True, cwd=cl.root)
    assert "slide=2" in (profile / "config.yaml").read_text()
    t0 = time.perf_counter()
    try:
        proc = cl.snakemake(
            "--profile", str(profile), *targets(cl), "--jobs", "4",
            # No slurmdbd here: status via squeue (MinJobAge=300 >= 3 x 2 s), fast first check.
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
            "--slurm-keep-successful-logs", timeout=480)
    except BaseException:
        local_proc.kill()
        raise
    t_slurm = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    rc = local_proc.wait()
    t_local = time.perf_counter() - t0
    assert rc == 0, f"local run failed:\n{(local.root / 'snakemake.out').read_text()[-5000:]}"

    # 1. Jobs really went through SLURM: submitted ids == ids squeue remembers for this run.
    submitted = set(re.findall(r"SLURM run ID: ([0-9a-f-]{36})", log))
    job_ids = set(re.findall(r"with SLURM jobid (\d+)", log))
    assert submitted and job_ids, f"no SLURM submission in the log:\n{log[-3000:]}"
    remembered = [j for j in squeue_jobs() if j["name"] in submitted]
    assert {j["id"] for j in remembered} == job_ids
    assert all(j["state"] == "COMPLETED" for j in remembered), remembered
    slurm_logs = list((cl.root / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= job_ids, slurm_logs

    # 2. Per-slide rules were batched: 3 slides x |present| rules in 2 group jobs.
    assert len(job_ids) == 2, f"expected 2 group submissions, got {sorted(job_ids)}"

    # 3. Same results as the local run.
    lay_l, lay_c = Layout(load_config(local.config_path)), Layout(load_config(cl.config_path))
    slides = list(list_slides(load_config(cl.config_path)))
    assert len(slides) == 3
    for sid in slides:
        c_local, c_slurm = h5(lay_l.coords(sid), "coords"), h5(lay_c.coords(sid), "coords")
        assert c_local.dtype == c_slurm.dtype == np.int64
        np.testing.assert_array_equal(c_slurm, c_local)
        if "extract_features" in present:
            f_local, f_slurm = h5(lay_l.features(sid), "features"), h5(lay_c.features(sid), "features")
            assert f_local.shape == f_slurm.shape
            np.testing.assert_allclose(f_slurm, f_local, rtol=1e-4, atol=1e-5)
            np.testing.assert_array_equal(h5(lay_c.features(sid), "coords"), c_local)
    total = time.perf_counter() - t_start
    print(f"\nSLURM test: cluster start {slurm_cluster['start_seconds']:.1f}s, local run "
          f"{t_local:.1f}s, SLURM run {t_slurm:.1f}s ({len(job_ids)} jobs), total {total:.1f}s")
