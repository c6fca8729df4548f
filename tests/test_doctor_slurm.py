"""`pathgen doctor`'s SLURM checks without SLURM: parsing `scontrol show ... -o` text, each
rule's largest request (routed like res() in rules/common.smk) and the comparison with the
partitions' limits, and the job-status-command check."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from pathgen import doctor
from pathgen.config import Layer, resolve_config, validate_config, with_demo_overlay
from pathgen.doctor import (Partition, Request, check_request, largest_requests,
                            parse_gres, parse_minutes, parse_nodes, parse_partitions,
                            status_command_problem, submitted_rules)

# Two lines of `scontrol show partition -o` / `show node -o` from Slurm 22.05 (the test
# cluster of pathgen_testkit/slurm_cluster/start.sh, plus a typed-GPU node and a per-CPU memory limit).
PARTITIONS = """\
PartitionName=cpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=00:10:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=02:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=4 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=4000 TRES=cpu=4,mem=23081M,node=1,billing=4
PartitionName=gpu AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=00:10:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=8 Nodes=vm,g[1-2] PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=4 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerCPU=2000 MaxMemPerCPU=8000 TRES=cpu=4,mem=23081M,node=1,billing=4
PartitionName=old AllowGroups=ALL Default=NO MaxTime=UNLIMITED MaxCPUsPerNode=UNLIMITED Nodes=vm State=DOWN MaxMemPerNode=UNLIMITED
"""
NODES = """\
NodeName=vm Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=4 CPUTot=4 CPULoad=2.67 AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:4 NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8 OS=Linux 6.18.44 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=23081 AllocMem=0 FreeMem=18395 Sockets=4 Boards=1 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=cpu,gpu,old  BootTime=2026-12-01T08:38:22 SlurmdStartTime=2026-12-01T08:58:50 CfgTRES=cpu=4,mem=23081M,billing=4 AllocTRES= CapWatts=n/a
NodeName=g1 Arch=x86_64 CPUTot=64 Gres=gpu:a100:2(S:0-1),gpu:v100:1 RealMemory=512000 State=MIXED Partitions=gpu
"""


@pytest.fixture
def cluster():
    return parse_partitions(PARTITIONS), parse_nodes(NODES)


def req(rule="r", partition=None, mem_mb=1000, cpus=1, gpus=0, minutes=10, gpu_model=None):
    return Request(rule, partition, mem_mb, cpus, gpus, minutes, gpu_model)


def test_parse_partitions_and_nodes(cluster):
    parts, nodes = cluster
    assert set(parts) == {"cpu", "gpu", "old"}
    assert parts["cpu"] == Partition("cpu", default=True, state="UP", max_minutes=120,
                                     max_mem_per_node=4000, max_mem_per_cpu=None, max_cpus_per_node=None)
    assert parts["gpu"].max_minutes == 1440 and parts["gpu"].max_mem_per_cpu == 8000
    assert parts["gpu"].max_cpus_per_node == 8 and parts["gpu"].max_mem_per_node is None
    assert parts["old"].max_minutes is None and parts["old"].state == "DOWN"
    vm, g1 = nodes
    assert (vm.name, vm.cpus, vm.mem_mb, vm.partitions, vm.gpus) == (
        "vm", 4, 23081, ["cpu", "gpu", "old"], {None: 4})
    assert g1.gpus == {"a100": 2, "v100": 1} and g1.gpu_total == 3 and g1.cpus == 64


@pytest.mark.parametrize("text, minutes", [("UNLIMITED", None), ("30", 30), ("02:00:00", 120),
                                           ("1-12:00:00", 2160), ("2-0", 2880), ("00:30:30", 31),
                                           ("45:00", 45)])
def test_parse_minutes(text, minutes):
    assert parse_minutes(text) == minutes


def test_parse_gres():
    assert parse_gres("(null)") == {}
    assert parse_gres("gpu:2") == {None: 2}
    assert parse_gres("gpu:tesla:2(S:0),mps:100,gpu:1") == {"tesla": 2, None: 1}


@pytest.mark.parametrize("request_, problem", [
    (req(), None),                                                   # default partition: cpu
    (req(partition="gpu", gpus=1, mem_mb=16000, cpus=2, minutes=600), None),
    (req(minutes=121), "121 min > MaxTime 120 min of partition 'cpu' (default)"),
    (req(partition="cpu", mem_mb=4001), "4001 MB > MaxMemPerNode 4000 MB of partition 'cpu'"),
    (req(partition="gpu", gpus=1, mem_mb=16001, cpus=2), "16001 MB > MaxMemPerCPU 8000 MB x 2 CPU"),
    (req(partition="gpu", gpus=1, cpus=9), "9 CPUs > MaxCPUsPerNode 8 of partition 'gpu'"),
    (req(partition="cpu", cpus=5), "asks 5 CPUs; the largest node of partition 'cpu' has 4"),
    (req(partition="gpu", gpus=5, cpus=1), "asks 5 GPUs; the nodes of partition 'gpu' have at most 4"),
    (req(partition="gpu", gpus=2, gpu_model="a100"), None),
    (req(partition="gpu", gpus=3, gpu_model="a100"), "asks 3 'a100' GPUs; the nodes of partition 'gpu' have at most 2"),
    (req(partition="gpu", gpus=1, gpu_model="h100"), "no node of partition 'gpu' has 'h100' GPUs"),
    # 5 CPUs exist only on g1, 4 GPUs only on vm: no one node has both
    (req(partition="gpu", gpus=4, cpus=5), "no single node of partition 'gpu' has"),
    (req(partition="gpus", gpus=1), "partition 'gpus' does not exist (partitions: cpu, gpu, old)"),
    (req(partition="old"), "partition 'old' is DOWN"),
])
def test_check_request(cluster, request_, problem):
    got = check_request(request_, *cluster)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got, got


def test_no_gpus_on_a_cpu_only_partition():
    parts = parse_partitions("PartitionName=cpu Default=YES MaxTime=UNLIMITED State=UP\n")
    nodes = parse_nodes("NodeName=n1 CPUTot=8 RealMemory=64000 Gres=(null) Partitions=cpu\n")
    assert "no node of partition 'cpu' (default) has GPUs (Gres)" in check_request(req(gpus=1), parts, nodes)
    assert "no default partition" in check_request(
        req(), parse_partitions("PartitionName=a Default=NO\n"), nodes)


def tiny_cfg(resources=None, **cluster):
    """The repo config (demo, training, zero-shot, MIL) with a few resources changed."""
    import yaml

    data = with_demo_overlay(yaml.safe_load((doctor.PROFILE.parents[1] / "config.yaml").read_text()))
    data["cluster"] = {"chunk_size": 3, "max_job_minutes": 100, **cluster}
    data["resources"] = {"tile": {"runtime": 7, "mem_mb": 1234, "threads": 2},
                         "caption": {"runtime": 50},
                         "train_clip": {"runtime": 90, "gpu": 1, "mem_mb": 8000, "cpus_per_task": 3},
                         "build_dataset": {"slurm_partition": "big"}} if resources is None else resources
    return resolve_config([Layer("test", data)], demo=False).config  # these resources, not the demo's


def test_largest_requests_follow_res_routing_and_chunk_runtime():
    # caption: 50 min per slide -> chunks lowered to 100 // 50 = 2 slides
    cfg = tiny_cfg(gpu_partition="gpu", cpu_partition="cpu")
    assert cfg.chunk_size() == 2
    reqs = {r.rule: r for r in largest_requests(cfg)}
    assert set(reqs) == set(submitted_rules(cfg))
    # the light aggregates in cluster.local_rules are not submitted
    assert not set(reqs) & set(cfg.cluster.local_rules)
    assert {"make_demo_slide", "tile", "extract_features", "train_clip", "zeroshot", "mil"} <= set(reqs)
    assert reqs["tile"] == Request("tile", "cpu", 1234, 2, 0, 14)           # 2 slides x 7 min
    assert reqs["caption"].minutes == 100                                   # min(cap, 2 x 50)
    assert reqs["extract_features"].partition == "gpu" and reqs["extract_features"].gpus == 1
    assert reqs["train_clip"] == Request("train_clip", "gpu", 8000, 3, 1, 90)  # not chunked
    assert reqs["zeroshot"].minutes == 100  # 120 min default, capped like every submission
    assert reqs["build_dataset"].partition == "big"                         # the rule's own wins
    assert reqs["tile"].sbatch_args() == ["-p", "cpu", "-t", "14", "--mem", "1234", "--ntasks=1",
                                          "--cpus-per-task=2"]
    assert reqs["train_clip"].sbatch_args() == ["-p", "gpu", "-t", "90", "--mem", "8000",
                                                "--cpus-per-task=3", "--gpus=1"]
    # no partitions configured: the cluster's default one (no -p)
    plain = {r.rule: r for r in largest_requests(tiny_cfg())}
    assert plain["extract_features"].partition is None
    assert plain["extract_features"].sbatch_args()[:2] == ["-t", "40"]


def test_submitted_rules_follow_the_config():
    cfg = validate_config({"slides": {"dir": "/nonexistent"}, "training": {"enabled": False},
                           "evaluation": {"mil": {"enabled": False}, "zeroshot": {"enabled": False}},
                           "cluster": {"local_rules": ["build_report", "build_dataset"]}})
    assert submitted_rules(cfg) == ["tile", "extract_features", "select_patches", "caption"] + (
        ["build_instruct"] if cfg.instruct.enabled else [])


CONFIG_NO_DBD = ("AccountingStorageType   = accounting_storage/none\n"
                 "MinJobAge               = 300 sec\nSLURM_VERSION           = 22.05.8\n")


def test_status_command_problem():
    squeue = {"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 20}
    assert status_command_problem(squeue, CONFIG_NO_DBD, sacct_on_path=True) is None
    # sacct (explicit, or the plugin default when sacct is on PATH) without slurmdbd: never finishes
    for profile in ({"slurm-status-command": "sacct"}, {}):
        assert "no accounting database" in status_command_problem(profile, CONFIG_NO_DBD, True)
    assert status_command_problem({}, CONFIG_NO_DBD, sacct_on_path=False) is None  # squeue then
    # squeue with MinJobAge < 3 x init: the plugin silently falls back to sacct
    slow = {"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 200}
    assert "MinJobAge 300 s < 3 x" in status_command_problem(slow, CONFIG_NO_DBD, True)
    dbd = CONFIG_NO_DBD.replace("accounting_storage/none", "accounting_storage/slurmdbd")
    assert status_command_problem({}, dbd, True) is None


def test_repo_profile_status_command_works_without_slurmdbd():
    import yaml

    profile = yaml.safe_load(doctor.PROFILE.read_text())
    assert profile["slurm-status-command"] == "squeue"
    assert status_command_problem(profile, CONFIG_NO_DBD, sacct_on_path=True) is None


def test_slurm_checks_against_canned_scontrol(monkeypatch, tmp_path):
    """slurm_checks end to end with a fake `scontrol`/`sbatch` (no cluster): one [FAIL] per
    misfit rule naming the limit; the scheduler's own reason from sbatch --test-only."""
    answers = {("show", "partition", "-o"): PARTITIONS, ("show", "node", "-o"): NODES,
               ("show", "config"): CONFIG_NO_DBD}

    def fake_run(cmd, timeout=15):
        if cmd[0] == "scontrol":
            return subprocess.CompletedProcess(cmd, 0, answers[tuple(cmd[1:])], "")
        assert cmd[:2] == ["sbatch", "--test-only"]
        if "--gpus=1" in cmd:  # pretend a QOS limit doctor cannot see
            return subprocess.CompletedProcess(cmd, 1, "", "sbatch: error: Batch job submission "
                                               "failed: Job violates accounting/QOS policy")
        return subprocess.CompletedProcess(cmd, 0, "", "sbatch: Job 3 to start at now")

    monkeypatch.setattr(doctor, "_run", fake_run)
    monkeypatch.setattr(doctor.shutil, "which", lambda name: f"/usr/bin/{name}")
    profile = tmp_path / "config.yaml"
    profile.write_text("slurm-status-command: squeue\nslurm-init-seconds-before-status-checks: 20\n")
    cfg = tiny_cfg({"select_patches": {"mem_mb": 5000, "runtime": 70}, "mil": {"runtime": 60},
                    "build_dataset": {"mem_mb": 2000, "runtime": 60}},
                   gpu_partition="gpu", cpu_partition="cpu", chunk_size=2, max_job_minutes=1440)
    checks = doctor.slurm_checks(cfg, profile)
    fails = {name: msg for name, ok, msg in checks if not ok}
    both = fails.pop("SLURM request select_patches")  # every misfit of the rule, not the first
    assert "asks 140 min > MaxTime 120 min of partition 'cpu'; asks 5000 MB > MaxMemPerNode 4000 MB" in both
    # every GPU rule that fits the parsed limits got the scheduler's own reason
    for rule in ("extract_features", "zeroshot", "mil"):
        assert "Job violates accounting/QOS policy" in fails.pop(f"SLURM request {rule}")
    # train_clip's default 1440 min equals the gpu partition's MaxTime of 1 day: fits
    assert "Job violates" in fails.pop("SLURM request train_clip")
    # the baseline trains and trained CLIPs' features are extracted with those rules' GPU requests
    for rule in {"train_baseline", "extract_model_features"} & set(doctor.submitted_rules(cfg)):
        assert "Job violates accounting/QOS policy" in fails.pop(f"SLURM request {rule}")
    assert not fails, fails
    assert ("SLURM job status", True) == next((n, ok) for n, ok, _ in checks if n == "SLURM job status")
    assert not [c for c in doctor.slurm_checks(cfg, profile, sbatch_test=False)
                if not c[1] and "GPU" in c[2] and "QOS" in c[2]]


def test_doctor_without_slurm_skips_the_slurm_checks(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    cfg = validate_config({"demo": {"enabled": True}})
    assert doctor.slurm_checks(cfg) == []


def test_doctor_cli_has_the_slurm_options():
    from pathgen.cli import build_parser

    args = build_parser().parse_args(["doctor", "--no-sbatch-test", "--profile", "x"])
    assert isinstance(args, argparse.Namespace) and args.no_sbatch_test and args.profile == "x"


def test_doctor_with_an_unreachable_controller_skips(monkeypatch):
    calls = []

    def down(cmd, timeout=15):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "slurm_load_partitions: Unable to contact "
                                           "slurm controller (connect failure)")

    monkeypatch.setattr(doctor, "_run", down)
    monkeypatch.setattr(doctor.shutil, "which", lambda name: f"/usr/bin/{name}")
    (name, ok, msg), = doctor.slurm_checks(tiny_cfg())
    assert ok and "skipped: SLURM not reachable" in msg and "Unable to contact" in msg
    assert len(calls) == 1  # one client timeout, not one per query
