"""Multi-node CLIP training (training.nodes x training.gpus): the SLURM request of rule
train_clip, the srun launch, and a real 2-task run on the local single-node SLURM.

Unit tests: the sbatch line the snakemake-executor-plugin-slurm (2.8.0) builds from the rule's
resources for nodes=2 (built by the plugin's own get_submit_command / set_gres_string), the
srun command, the rendezvous variables, and the refusal of nodes > 1 outside SLURM.

SLURM test (the conftest's slurm_cluster fixture; skipped with the reason where SLURM cannot
be started): rule train_clip through `--profile slurm` with nodes=1, gpus=2, device cpu and gloo: one job with two
tasks, both ranks train (each logs its rank), final.pt loads in plain open_clip, and the loss
curve matches a 1-process run with the same global batch (2 x 4 = 8) within tolerance.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pathgen.config import ConfigError, validate_config
from pathgen.training.argv import launcher, processes, srun_command
from pathgen.training.entry import first_host, slurm_rendezvous
from pathgen.training.workflow import train_resources
from pathgen_testkit.training import MICRO, make_pairs
from pathgen_testkit.workspace import REPO, Workspace

BASE = {"mem_mb": 32000, "runtime": 1440, "gpu": 1, "slurm_partition": "gpu"}


class _Resources(dict):
    """What the plugin reads from job.resources: .get() and attribute access."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def sbatch_line(resources: dict, threads: int = 8) -> str:
    """The plugin's own sbatch command (plus its GRES part) for a job with these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = SimpleNamespace(resources=_Resources(resources), threads=threads)
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "c", "account": "",
              "partition": f"-p {resources.get('slurm_partition', '')}", "workdir": "/w"}
    return get_submit_command(job, params) + set_gres_string(job)


def cfg(**training):
    return validate_config({"training": training})


def test_two_nodes_four_gpus_sbatch_and_srun():
    c = cfg(nodes=2, gpus=4)
    res = train_resources(c, BASE)
    assert res == {"mem_mb": 32000, "runtime": 1440, "slurm_partition": "gpu", "nodes": 2,
                   "mpi": "srun", "tasks_per_gpu": 0, "gres": "gpu:4", "tasks_per_node": 4}
    line = sbatch_line(res)
    for flag in ("--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4", "--cpus-per-task=8",
                 "--mem 32000", "-p gpu"):
        assert flag in line, (flag, line)
    assert "--gpus" not in line and "--ntasks-per-gpu" not in line and "--ntasks=" not in line
    assert processes(c.training) == 8
    cmd = launcher(c.training, "cuda", env={"SLURM_JOB_ID": "7"}, threads=8)
    assert cmd[:8] == ["srun", "--nodes=2", "--ntasks=8", "--ntasks-per-node=4",
                       "--kill-on-bad-exit=1", "--export=ALL", "--cpus-per-task=8", "--gres=gpu:4"]
    assert cmd[-2:] == ["-m", "pathgen.training.entry"]


def test_one_gpu_per_node_and_gpu_model():
    res = train_resources(cfg(nodes=3, gpus=1), {**BASE, "gpu_model": "a100"})
    assert res["tasks"] == 3 and "tasks_per_node" not in res and res["gres"] == "gpu:a100:1"
    line = sbatch_line(res)
    assert "--nodes=3" in line and "--ntasks=3" in line and "--gres=gpu:a100:1" in line
    assert "--gpus" not in line and "--ntasks-per-gpu" not in line


def test_single_process_keeps_the_rule_resources_and_launchers():
    assert train_resources(cfg(), BASE) == BASE
    one = cfg(gpus=1).training
    assert launcher(one, "cuda", env={"SLURM_JOB_ID": "7"}) == []
    four = cfg(gpus=4).training  # outside SLURM: torchrun on this machine, as before
    assert launcher(four, "cuda", env={})[2:4] == ["torch.distributed.run", "--standalone"]
    assert launcher(four, "cuda", env={"SLURM_JOB_ID": "7"})[0] == "srun"
    # CPU tasks (the SLURM test): no GPU asked, N x G tasks
    res = train_resources(cfg(gpus=2, device="cpu"), BASE)
    assert res["tasks"] == 2 and "gres" not in res and "gpu" not in res
    assert "--ntasks=2" in sbatch_line(res, threads=1) and "--gres" not in sbatch_line(res)
    assert "--gres" not in " ".join(srun_command(cfg(gpus=2, device="cpu").training, "cpu"))


def test_nodes_above_one_refused_outside_slurm(tmp_path):
    from pathgen.training.run import train

    c = cfg(nodes=2, gpus=1)
    with pytest.raises(ConfigError, match="training.nodes is 2 but this run is not inside a SLURM"):
        launcher(c.training, "cuda", env={})
    make_pairs(tmp_path)
    with pytest.raises(ConfigError, match="not inside a SLURM job"):
        train(c.training, tmp_path / "training", tmp_path / "open_clip.csv")
    plan = train(c.training, tmp_path / "training", tmp_path / "open_clip.csv", dry_run=True)
    assert plan.stages[0].command[:3] == ["srun", "--nodes=2", "--ntasks=2"]
    with pytest.raises(ConfigError):
        cfg(nodes=0)


def test_rendezvous_from_the_step():
    assert first_host("nonexistent-host[003-005,9],x1") == "nonexistent-host003"
    assert first_host("solo") == "solo"
    env = {"SLURM_PROCID": "1", "SLURM_STEP_NODELIST": "n[2-3]", "SLURM_JOB_ID": "41",
           "SLURM_STEP_ID": "0"}
    slurm_rendezvous(env)
    assert env["MASTER_ADDR"] == "n2" and 20000 <= int(env["MASTER_PORT"]) < 50000
    torchrun = {"SLURM_PROCID": "0", "RANK": "1"}
    slurm_rendezvous(torchrun)
    assert "MASTER_ADDR" not in torchrun


# -- the real thing: 2 gloo tasks in one SLURM job ------------------------------------------

N_PAIRS, PER_TASK_BATCH, EPOCHS = 32, 4, 3


def _training(tmp: Path, csv_path: Path, **over) -> dict:
    micro = tmp / "pathgen-micro.json"
    micro.write_text(json.dumps(MICRO))
    t = dict(arch="pathgen-micro", model_config_file=str(micro), pretrained=None, epochs=EPOCHS,
             batch_size=PER_TASK_BATCH, warmup=1, workers=0, log_every_n_steps=1, lr=1e-3,
             precision="fp32", stages=[{"name": "main", "data": [str(csv_path)]}])
    t.update(over)
    return t


def _epoch_means(loss_csv: Path) -> list[float]:
    rows = list(csv.DictReader(loss_csv.open()))
    by_epoch: dict[int, list[float]] = {}
    for r in rows:
        by_epoch.setdefault(int(r["epoch"]), []).append(float(r["loss"]))
    return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]


def test_two_tasks_on_slurm_match_one_process(slurm_cluster, tmp_path):
    import open_clip
    import torch

    from pathgen.training.run import train

    data = tmp_path / "data"
    pairs = make_pairs(data, n=N_PAIRS, absolute=True)
    slides = tmp_path / "slides"
    slides.mkdir()
    (slides / "TCGA-FAKE-00000.svs").touch()
    ws = Workspace(tmp_path / "ws")
    ws.write_config(
        results_dir=str(ws.root / "results"), demo={"enabled": False},
        slides={"dir": str(slides), "default_mpp": 0.5},
        cluster={"gpu_partition": "gpu", "cpu_partition": "cpu", "max_job_minutes": 30},
        resources={"train_clip": {"threads": 1, "mem_mb": 1500, "runtime": 20, "gpu": 0}},
        training=_training(tmp_path, pairs, gpus=2, device="cpu",
                           extra_args=["--dist-backend", "gloo"]))
    target = ws.root / "results" / "training" / "final.pt"
    t0 = time.perf_counter()
    ws.snakemake("--profile", str(REPO / "slurm"), "--slurm-init-seconds-before-status-checks",
                 "2", "--slurm-keep-successful-logs", str(target), timeout=300)
    t_slurm = time.perf_counter() - t0
    assert target.exists()

    # one SLURM job, two tasks, both ranks in the trainer
    from pathgen_testkit.slurm_cluster import scontrol_jobs

    stage = ws.root / "results" / "training" / "pathgen-clip" / "main" / "logs" / "pathgen-clip"
    out_log = (stage / "out.log").read_text()
    assert "total 2." in out_log, out_log[-2000:]
    job_logs = "".join(p.read_text() for p in (ws.root / ".snakemake" / "slurm_logs").rglob("*.log"))
    for rank in (0, 1):
        assert f"Process (global: {rank}, local {rank}), total 2." in job_logs, job_logs[-3000:]
    rule_logs = "".join(p.read_text() for p in (ws.root / "results").rglob("*train_clip*")
                        if p.is_file() and p.suffix == ".log")
    assert "launching: srun --nodes=1 --ntasks=2 --ntasks-per-node=2" in rule_logs + job_logs
    jobs = [j for j in scontrol_jobs() if j.get("NumTasks") == "2" and j.get("WorkDir") == str(ws.root)]
    assert jobs, scontrol_jobs()

    # plain open_clip loads it
    open_clip.add_model_config(tmp_path / "pathgen-micro.json")
    model, _, _ = open_clip.create_model_and_transforms("pathgen-micro", pretrained=str(target))
    last = torch.load(stage / "checkpoints" / f"epoch_{EPOCHS}.pt", weights_only=True)["state_dict"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, last[k.removeprefix("module.")] if k in last else last["module." + k]), k

    # the same global batch (2 x 4) in one process
    t1 = time.perf_counter()
    one = validate_config({"results_dir": str(tmp_path / "one"),
                           "training": _training(tmp_path, pairs, gpus=0,
                                                 batch_size=2 * PER_TASK_BATCH)})
    train(one.training, tmp_path / "one" / "training", None, threads=1)
    t_one = time.perf_counter() - t1
    multi = _epoch_means(ws.root / "results" / "training" / "pathgen-clip" / "loss.csv")
    single = _epoch_means(tmp_path / "one" / "training" / "pathgen-clip" / "loss.csv")
    print(f"\nmulti-task SLURM run {t_slurm:.1f}s (2 tasks), 1-process run {t_one:.1f}s\n"
          f"  epoch mean loss, 2 tasks x batch 4: {[round(x, 4) for x in multi]}\n"
          f"  epoch mean loss, 1 process x batch 8: {[round(x, 4) for x in single]}")
    assert len(multi) == len(single) == EPOCHS
    for m, s in zip(multi, single):
        assert abs(m - s) <= 0.1 * s, (multi, single)
    assert multi[-1] < multi[0] and single[-1] < single[0]
