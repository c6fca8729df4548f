"""SLURM integration: the whole tiny workflow (demo slides -> report) through a real
single-node SLURM with the repo profile, `--profile slurm` as shipped.

The cluster (pathgen_testkit/slurm_cluster/start.sh, via the conftest's session fixture) has two partitions on one node:
`cpu` (default) and `gpu`, the node carrying a GRES of 4 fake GPUs (char devices aliasing
/dev/null, gres.conf AutoDetect=off) and ~23 GB; each partition caps a job at 4000 MB and
120 min (EnforcePartLimits=ALL). There is no slurmdbd, so the profile's own status command
(squeue) must carry the run, and `sacct` has no data: the per-submission assertions read
slurmctld's job records (`scontrol show job`: partition, time limit, memory, CPUs, GRES,
comment = rule + wildcards; MinJobAge=3600 keeps them) and cross-check the count with the
jobcomp/filetxt completion log, which is what sacct would have answered from slurmdbd.

One run of 6 demo slides in chunks of 3, with one slide made unreadable (a truncated file the
demo stage counts as written, pathgen_testkit/workspace.py plant_unreadable_demo_slide), checks:

* exactly the non-local rules became SLURM jobs (doctor's own list of submitted rules), one
  per chunk and stage; the submission count; every job COMPLETED;
* GPU rules went to `gpu` with exactly one GPU, CPU rules to `cpu` with none; each
  submission's memory, CPUs and time limit are exactly the config's per-rule resources (a
  chunk: members x the per-slide runtime), so an N-times over-ask would show, though it fits;
* the bad slide is quarantined (tile failed, later stages blocked, `pathgen status` says so)
  and the run still reaches the report, in bounded time;
* outputs equal a local run's (running alongside): coords exactly, features within float
  tolerance, the same captions;
* `pathgen doctor` passes against the live partitions, fails an over-asking config naming the
  rule and the limit, and such a config's sbatch rejection reaches the user with SLURM's reason.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from pathgen.config.layers import with_demo_overlay
from pathgen.config.resources import RESOURCES_OF

from pathgen_testkit.slurm_cluster import (STATE, exclusive, jobcomp_records, run_start_script,
                                           scontrol_jobs, skip_unless_cluster_possible)
from pathgen_testkit.workspace import REPO, Workspace, plant_unreadable_demo_slide

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BAD_SLIDE = "demo_001"  # in chunk_00000; not the held-out demo_004
SLURM_TIMEOUT = 1200    # the whole SLURM run must end within this (seconds; tests run in parallel)
# Per-rule requests, all different so each submission's numbers identify its rule; runtime
# is per slide for the chunk rules. threads 1 (2 for tile, to see --cpus-per-task follow).
RESOURCES = {
    "make_demo_slide": {"mem_mb": 600, "runtime": 1, "threads": 1},
    "tile": {"mem_mb": 700, "runtime": 2, "threads": 2},
    "extract_features": {"mem_mb": 800, "runtime": 3, "threads": 1, "gpu": 1},
    "select_patches": {"mem_mb": 900, "runtime": 2, "threads": 1},
    # a GPU because captioning is managed: the job starts its own (stand-in) model server
    "caption": {"mem_mb": 1000, "runtime": 4, "threads": 1, "gpu": 1},
    "build_dataset": {"mem_mb": 1100, "runtime": 5, "threads": 1},
    "train_clip": {"mem_mb": 1200, "runtime": 6, "threads": 1, "gpu": 1},
    "demo_benchmark": {"mem_mb": 1300, "runtime": 7, "threads": 1},
    "zeroshot": {"mem_mb": 1400, "runtime": 8, "threads": 1, "gpu": 1},
    "mil": {"mem_mb": 1500, "runtime": 9, "threads": 1, "gpu": 1},
    "build_instruct": {"mem_mb": 1600, "runtime": 10, "threads": 1},
    **{r: {"mem_mb": 500, "runtime": 5, "threads": 1}
       for r in ("demo_labels", "mil_splits", "mil_table", "zeroshot_table", "build_report",
                 "baseline_data")},
}
CHUNKED = ("make_demo_slide", "tile", "extract_features", "select_patches", "caption")
RESOURCE_OF = RESOURCES_OF  # rules that ask for another rule's resources (rules/training.smk)


def _absolute(value, root: Path):
    """The repo config's `results/...` paths, moved under the workspace."""
    if isinstance(value, dict):
        return {k: _absolute(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute(v, root) for v in value]
    if isinstance(value, str) and (value == "results" or value.startswith("results/")):
        return str(root / value)
    return value


def tiny_config(root: Path, **resources) -> dict:
    """The repo config.yaml, shrunk: 6 demo slides of 1536 x 1024 px (demo_004 held out),
    chunks of 3, one CLIP epoch, one MIL model, a small zero-shot set; features on CPU."""
    cfg = with_demo_overlay(yaml.safe_load((REPO / "config.yaml").read_text()))
    # every results path absolute, the defaults' too (Snakemake matches paths as written)
    cfg.setdefault("results_dir", "results")
    cfg["demo"].setdefault("out_dir", "results/demo")
    cfg = _absolute(cfg, root)
    cfg["demo"].update(n_slides=6, width_px=1536, height_px=1024, seed=0,
                       zeroshot_max_per_class=20)
    cfg["features"].update(device="cpu", num_workers=0)
    cfg["training"].update(epochs=1)
    cfg["evaluation"]["mil"].update(models=["abmil"], epochs=2)
    cfg["evaluation"]["mil"]["tasks"]["demo_tumor"].update(folds=2)
    cfg["evaluation"]["zeroshot"].update(bootstrap=20)
    cfg["cluster"].update(chunk_size=3, max_job_minutes=60, gpu_partition="gpu",
                          cpu_partition="cpu")
    cfg["on_slide_error"] = "quarantine"
    cfg["resources"] = {**RESOURCES, **resources}
    # real captioning's way on a cluster: each caption chunk job serves its agents itself
    # (the stand-in OpenAI-compatible server as the engine; its pid file names its port)
    cfg["captioning"].update(backend="openai", serve="managed", openai={"model": "stand-in-vlm"},
                             server={"engine": "command", "startup_timeout_s": 120, "command": [
                                 sys.executable, "-m", "pathgen_testkit.standin_server",
                                 "--model", "{model}", "--host", "{host}", "--port", "{port}",
                                 "--reply", "measured", "--latency", "0.01",
                                 "--pid-file", str(root / "server-{port}.pid")]})
    return cfg


def h5(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


def captions(path: Path) -> list[tuple]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted((r["x"], r["y"], r["caption"]) for r in rows)


def pathgen(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pathgen.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def expected_request(rule: str, wildcards: str, members: dict[str, list[str]]) -> dict:
    """What res() in rules/common.smk must send for this job."""
    base = RESOURCE_OF.get(rule, rule)
    r = RESOURCES[base]
    if base in CHUNKED:
        chunk = re.search(r"chunk_\d{5}", wildcards).group()
        minutes = min(60, r["runtime"] * len(members[(base, chunk)]))
    else:
        minutes = min(60, r["runtime"])
    return {"partition": "gpu" if r.get("gpu") else "cpu", "minutes": minutes,
            "mem": f"{r['mem_mb']}M", "cpus": str(r["threads"]),
            "gres": "gres:gpu:1" if r.get("gpu") else None}


def test_start_script_fails_fast_when_a_daemon_dies():
    """A config slurmctld dies on after daemonizing (TRES gres/gpu needs slurmdbd): start.sh
    must notice the dead PID within seconds, show the daemon's own log, and stop the rest.
    Runs before the cluster fixture (file order), which then starts a clean cluster."""
    skip_unless_cluster_possible()
    t0 = time.perf_counter()
    with exclusive():  # never while another test file's cluster runs
        proc = run_start_script(timeout=120, PATHGEN_SLURM_EXTRA_CONF="AccountingStorageTRES=gres/gpu")
    seconds = time.perf_counter() - t0
    assert proc.returncode == 4, proc.stderr[-3000:]
    # it dies before or after writing its pid file, depending on timing
    assert re.search(r"slurmctld died (right after start|at start|while waiting)", proc.stderr), \
        proc.stderr[-3000:]
    assert "slurmdbd is required to run with TRES gres/gpu" in proc.stderr  # the log tail
    assert seconds < 60, f"start.sh took {seconds:.0f} s to notice a dead slurmctld"
    assert not (STATE / "pids").exists()  # the daemons it had started are stopped


@pytest.mark.timeout(1800)  # a safety net (SLURM_TIMEOUT bounds the run), not a speed goal
def test_whole_workflow_through_slurm_matches_local(slurm_cluster, tmp_path):
    t_start = time.perf_counter()
    from pathgen.runner.chunks import read_registry
    from pathgen.config import load_config
    from pathgen.doctor import parse_minutes, submitted_rules
    from pathgen.paths import Layout
    from pathgen.training.workflow import model_feature_encoders
    from pathgen.zeroshot.workflow import model_names

    local, cl = Workspace(tmp_path / "local"), Workspace(tmp_path / "slurm")
    for ws in (local, cl):
        ws.write_config(**tiny_config(ws.root))
        plant_unreadable_demo_slide(ws, BAD_SLIDE)
    cfg_l, cfg_c = load_config(local.config_path), load_config(cl.config_path)
    lay_l, lay_c = Layout(cfg_l), Layout(cfg_c)

    # The local reference run (per-slide stages only: what is compared) goes on meanwhile.
    local_targets = [str(lay_l.chunk_done(st, c)) for st in ("features", "caption")
                     for c in ("chunk_00000", "chunk_00001")]
    local_proc = local.start("--cores", "2", *local_targets, timeout=SLURM_TIMEOUT)
    t0 = time.perf_counter()
    # The repo profile as shipped (status via squeue, no slurmdbd needed); only the first
    # status check is brought forward (profile: 20 s) and successful jobs' logs are kept.
    slurm_proc = cl.start("--profile", str(REPO / "slurm"), "--slurm-init-seconds-before-status-checks",
                          "2", "--slurm-keep-successful-logs", timeout=SLURM_TIMEOUT)
    procs = [local_proc, slurm_proc]
    try:
        # Meanwhile: doctor against the live cluster, and an over-asking config.
        doc = pathgen("doctor", "--config", str(cl.config_path), cwd=cl.root)
        over = Workspace(tmp_path / "overask")
        over.write_config(**tiny_config(over.root, make_demo_slide={"mem_mb": 5000, "runtime": 1,
                                                                    "threads": 1}))
        doc_over = pathgen("doctor", "--config", str(over.config_path), "--no-sbatch-test",
                           cwd=over.root)
        t_rej = time.perf_counter()
        rejected = over.snakemake("--profile", str(REPO / "slurm"), "--slurm-init-seconds-before-status-checks",
                                  "2", str(Layout(load_config(over.config_path)).chunk_done("demo", "chunk_00000")),
                                  timeout=180, check=False)
        t_rej = time.perf_counter() - t_rej
        rc = slurm_proc.wait()
        t_slurm = time.perf_counter() - t0
        rc_local = local_proc.wait() if rc == 0 else None  # a failed SLURM run: do not wait
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    log = (cl.root / "snakemake.out").read_text()
    assert rc != 124, f"the SLURM run did not end within {SLURM_TIMEOUT} s:\n{log[-5000:]}"
    assert rc == 0, f"SLURM run failed (rc {rc}):\n{log[-8000:]}"
    assert rc_local == 0, f"local run failed:\n{(local.root / 'snakemake.out').read_text()[-5000:]}"

    # -- doctor and the sbatch rejection -----------------------------------------------------
    assert doc.returncode == 0, doc.stdout + doc.stderr
    assert re.search(r"^\[ok\] SLURM limits: the largest request of each of \d+ submitted rules fits",
                     doc.stdout, re.M), doc.stdout
    assert "sbatch --test-only accepts each" in doc.stdout
    assert "[ok] SLURM job status: squeue" in doc.stdout, doc.stdout
    assert doc_over.returncode == 1, doc_over.stdout
    assert ("[FAIL] SLURM request make_demo_slide: 1 CPU, 5000 MB, no GPU, 3 min on cpu: asks 5000 MB "
            "> MaxMemPerNode 4000 MB of partition 'cpu'") in doc_over.stdout, doc_over.stdout
    rej_log = rejected.stdout + rejected.stderr
    assert rejected.returncode not in (0, 124), rej_log[-4000:]
    assert "Error in rule make_demo_slide" in rej_log, rej_log[-4000:]
    assert "sbatch: error: Batch job submission failed: Memory required by task is not available" in rej_log
    assert t_rej < 120, f"a rejected submission took {t_rej:.0f} s to reach the user"

    # -- what SLURM ran --------------------------------------------------------------------
    run_ids = set(re.findall(r"SLURM run ID: ([0-9a-f-]{36})", log))
    submitted = set(re.findall(r"with SLURM jobid (\d+)", log))
    assert len(run_ids) == 1 and submitted, f"no SLURM submission in the log:\n{log[-3000:]}"
    jobs = [j for j in scontrol_jobs() if j.get("JobName") in run_ids]
    assert {j["JobId"] for j in jobs} == submitted, (sorted(submitted), jobs)
    ended = {r["JobId"]: r for r in jobcomp_records() if r["JobId"] in submitted}
    assert set(ended) == submitted and all(r["JobState"] == "COMPLETED" for r in ended.values())
    bad_state = [(j["JobId"], j["Comment"], j["JobState"], j["ExitCode"]) for j in jobs
                 if j["JobState"] != "COMPLETED" or j["ExitCode"] != "0:0"]
    assert not bad_state, bad_state

    registry = read_registry(lay_c.chunk_registry)
    holdout = set(lay_c.holdout_ids(list(registry)))
    members = {}
    for slide, chunk in registry.items():
        for rule in CHUNKED:
            if rule in ("select_patches", "caption") and slide in holdout:
                continue
            members.setdefault((rule, chunk), []).append(slide)
    expected_jobs = {(rule, chunk) for rule, chunk in members}
    seen: dict[str, list[str]] = {}
    rows = []
    for j in jobs:
        m = re.fullmatch(r"rule_(\w+?)(?:_wildcards_(.*))?", j["Comment"])
        rule, wildcards = m.group(1), m.group(2) or ""
        seen.setdefault(rule, []).append(wildcards)
        want = expected_request(rule, wildcards, members)
        got = {"partition": j["Partition"], "minutes": parse_minutes(j["TimeLimit"]),
               "mem": j["MinMemoryNode"], "cpus": j["CPUs/Task"], "gres": j.get("TresPerJob")}
        assert got == want, f"{rule} {wildcards}: SLURM got {got}, the config says {want}"
        # cpu-only jobs carry no GRES at all; GPU jobs exactly one GPU
        assert ("gpu" in j.get("TRES", "") + j.get("TresPerJob", "")) == bool(
            RESOURCES[RESOURCE_OF.get(rule, rule)].get("gpu"))
        rows.append(f"{rule}[{wildcards or '-'}]: -p {got['partition']} -t {got['minutes']} "
                    f"--mem {got['mem']} -c {got['cpus']}{' --gpus=1' if got['gres'] else ''}")
    # exactly the non-local rules, chunk rules once per chunk (and per stage)
    assert set(seen) == set(submitted_rules(cfg_c)), (sorted(seen), submitted_rules(cfg_c))
    assert not set(seen) & set(cfg_c.cluster.local_rules)
    chunk_jobs = {(r, re.search(r"chunk_\d{5}", w).group()) for r in CHUNKED for w in seen.get(r, [])}
    assert chunk_jobs == expected_jobs and all(len(seen[r]) == len({w for w in seen[r]}) for r in seen)
    # build_dataset, train_clip, demo_benchmark; zeroshot per model; mil per encoder x model;
    # per baseline its data + training; trained CLIPs' features per chunk
    mil_c = cfg_c.evaluation.mil
    n_expected = len(expected_jobs) + 3 + len(model_names(cfg_c))
    n_expected += len(mil_c.tasks) * len(mil_c.encoders) * len(mil_c.models)
    n_expected += 2 * len(cfg_c.training.baselines)
    n_expected += len(set(registry.values())) * len(model_feature_encoders(cfg_c))
    n_expected += 1 if cfg_c.instruct.enabled else 0
    assert len(jobs) == n_expected, (len(jobs), sorted(seen.items()))
    logs = list((cl.root / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= submitted

    # -- the bad slide: quarantined, the run still reached the report -----------------------
    st = pathgen("status", "--config", str(cl.config_path), "--json", cwd=cl.root)
    assert st.returncode == 1, st.stderr  # 1 = some slide is quarantined
    table = json.loads(st.stdout)
    bad = table[BAD_SLIDE]
    assert bad["demo"]["status"] == "done" and bad["tile"]["status"] == "failed", bad
    assert bad["tile"]["error"] and bad["tile"]["fix"]
    assert all(bad[s]["status"] == "blocked" for s in ("features", "select", "caption")), bad
    good = [s for s in registry if s != BAD_SLIDE]
    for sid in good:
        stages = ("demo", "tile", "features") + (() if sid in holdout else ("select", "caption"))
        assert all(table[sid][s]["status"] == "done" for s in stages), (sid, table[sid])
    # -- managed serving: each caption chunk's server ran on the node and is gone -----------
    pids = [int(p.read_text()) for p in cl.root.glob("server-*.pid")]
    assert len(pids) == len([c for r, c in expected_jobs if r == "caption"]), pids
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    server_logs = list((cl.root / "results" / "logs" / "caption").rglob("server.log"))
    assert server_logs and all("ready on http://127.0.0.1:" in p.read_text() for p in server_logs)
    report = lay_c.report_dir / "summary.html"
    assert report.exists() and "Slide-level MIL" in report.read_text()
    assert (lay_c.dataset_dir / "dataset_card.json").exists()

    # -- the same results as the local run --------------------------------------------------
    st_l = json.loads(pathgen("status", "--config", str(local.config_path), "--json",
                              cwd=local.root).stdout)
    assert st_l[BAD_SLIDE]["tile"]["status"] == "failed"
    n_caps = 0
    for sid in good:
        c_local, c_slurm = h5(lay_l.coords(sid), "coords"), h5(lay_c.coords(sid), "coords")
        assert c_local.dtype == c_slurm.dtype == np.int64 and len(c_local)
        np.testing.assert_array_equal(c_slurm, c_local)
        f_local, f_slurm = h5(lay_l.features(sid), "features"), h5(lay_c.features(sid), "features")
        assert f_local.shape == f_slurm.shape
        np.testing.assert_allclose(f_slurm, f_local, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(h5(lay_c.features(sid), "coords"), c_local)
        if sid not in holdout:
            cap_l, cap_c = captions(lay_l.captions(sid)), captions(lay_c.captions(sid))
            assert cap_l == cap_c and cap_l, sid
            n_caps += len(cap_l)
    total = time.perf_counter() - t_start
    assert t_slurm < SLURM_TIMEOUT
    print(f"\nSLURM test: cluster start {slurm_cluster['start_seconds']:.1f}s, SLURM run {t_slurm:.1f}s "
          f"({len(jobs)} submissions, {n_caps} captions compared), sbatch rejection reported in "
          f"{t_rej:.1f}s, total {total:.1f}s\n  " + "\n  ".join(sorted(rows)))
