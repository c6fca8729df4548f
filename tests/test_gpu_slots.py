"""Local GPU slots (pathgen.gpu_slots): each job on a multi-GPU workstation claims its own
device through a per-device flock, with the device count faked (PATHGEN_FAKE_GPU_COUNT)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pathgen import gpu_slots
from pathgen.gpu_slots import claim_gpus, gpu_lock_dir, job_gpus, job_lock_dir, visible_gpu_count

REPO = Path(__file__).resolve().parents[1]

# Claims one GPU, prints the CUDA_VISIBLE_DEVICES it got, holds it until <release> exists.
WORKER = textwrap.dedent("""
    import os, sys, time
    from pathgen.gpu_slots import claim_gpus
    lock_dir, release = sys.argv[1], sys.argv[2]
    with claim_gpus(lock_dir, 1, timeout_s=float(sys.argv[3]), poll_s=0.05):
        print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
        while not os.path.exists(release):
            time.sleep(0.02)
    print("released", flush=True)
""")


def local_env(**extra) -> dict[str, str]:
    """This environment minus SLURM and a user's CUDA_VISIBLE_DEVICES, plus ``extra``."""
    drop = (gpu_slots.CUDA_VISIBLE_DEVICES, gpu_slots.LOCK_DIR_ENV, gpu_slots.CLAIMED_ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k not in drop}
    return {**env, **extra}


def start_worker(lock_dir: Path, release: Path, env: dict, timeout_s: float = 60) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(lock_dir), str(release), str(timeout_s)],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen, wait_s: float) -> str | None:
    """The worker's next stdout line, or None when it prints nothing within ``wait_s``."""
    ready, _, _ = select.select([proc.stdout], [], [], wait_s)
    return proc.stdout.readline().strip() if ready else None


@pytest.fixture
def workers():
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        p.stdout.close()
        p.stderr.close()


def test_four_jobs_get_four_gpus_and_a_fifth_waits_for_a_free_one(tmp_path, workers):
    lock_dir = gpu_lock_dir(tmp_path / "results")
    env = local_env(PATHGEN_FAKE_GPU_COUNT="4")
    releases = [tmp_path / f"release{i}" for i in range(5)]
    for i in range(4):
        workers.append(start_worker(lock_dir, releases[i], env))
    got = [read_line(p, 60) for p in workers]
    assert sorted(got) == ["0", "1", "2", "3"], [p.stderr.read() for p in workers if p.poll() is not None]

    fifth = start_worker(lock_dir, releases[4], env)
    workers.append(fifth)
    assert read_line(fifth, 1.5) is None  # every device is held: it waits
    assert fifth.poll() is None

    releases[2].touch()  # the third job ends
    assert read_line(workers[2], 30) == "released"
    assert read_line(fifth, 30) == got[2]  # ... and the waiting job gets its device
    releases[4].touch()
    for r in releases[:4]:
        r.touch()
    for p in workers:
        assert p.wait(timeout=30) == 0, p.stderr.read()
    # stale lock files stay (one per device and host); the locks themselves are gone
    assert len(list(lock_dir.glob("*.lock"))) == 4
    with claim_gpus(lock_dir, 4, env={"PATHGEN_FAKE_GPU_COUNT": "4"}, timeout_s=0) as claim:
        assert claim.devices == [0, 1, 2, 3]


def test_a_killed_job_releases_its_gpu(tmp_path, workers):
    lock_dir = gpu_lock_dir(tmp_path / "results")
    worker = start_worker(lock_dir, tmp_path / "never", local_env(PATHGEN_FAKE_GPU_COUNT="1"))
    workers.append(worker)
    assert read_line(worker, 60) == "0"
    env = {"PATHGEN_FAKE_GPU_COUNT": "1"}
    with pytest.raises(RuntimeError) as err:  # held: a short wait ends with the fix
        claim_gpus(lock_dir, 1, env=env, timeout_s=0.2, poll_s=0.05)
    assert str(lock_dir) in str(err.value) and "--resources gpu=N" in str(err.value)
    assert gpu_slots.CUDA_VISIBLE_DEVICES not in env

    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    with claim_gpus(lock_dir, 1, env=env, timeout_s=5, poll_s=0.05) as claim:
        assert claim.devices == [0] and env[gpu_slots.CUDA_VISIBLE_DEVICES] == "0"
    assert gpu_slots.CUDA_VISIBLE_DEVICES not in env  # restored on release


def test_slurm_keeps_its_assignment(tmp_path):
    env = {"SLURM_JOB_ID": "123", "CUDA_VISIBLE_DEVICES": "2", "PATHGEN_FAKE_GPU_COUNT": "4"}
    before = dict(env)
    with claim_gpus(tmp_path / "locks", 1, env=env, timeout_s=0) as claim:
        assert claim.devices == [] and claim.env_value == "2" and not claim.claimed
        assert env == before
    assert env == before and not (tmp_path / "locks").exists()
    # SLURM_JOB_GPUS alone also means SLURM chose (here: no CUDA_VISIBLE_DEVICES at all)
    env = {"SLURM_JOB_ID": "123", "SLURM_JOB_GPUS": "1", "PATHGEN_FAKE_GPU_COUNT": "4"}
    assert claim_gpus(tmp_path / "locks", 1, env=env).devices == [] and "CUDA_VISIBLE_DEVICES" not in env


def test_no_gpu_no_change(tmp_path):
    for env in ({"PATHGEN_FAKE_GPU_COUNT": "0"}, {"CUDA_VISIBLE_DEVICES": "", "PATHGEN_FAKE_GPU_COUNT": "4"}):
        before = dict(env)
        with claim_gpus(tmp_path / "locks", 1, env=env, timeout_s=0) as claim:
            assert claim.devices == [] and env == before
        assert env == before


def test_a_users_visible_devices_are_the_pool(tmp_path):
    lock_dir = tmp_path / "locks"
    envs = [{"CUDA_VISIBLE_DEVICES": "5,7", "PATHGEN_FAKE_GPU_COUNT": "8"} for _ in range(3)]
    first = claim_gpus(lock_dir, 1, env=envs[0], timeout_s=0)
    second = claim_gpus(lock_dir, 1, env=envs[1], timeout_s=0)
    assert (first.devices, second.devices) == ([5], [7])
    assert (envs[0]["CUDA_VISIBLE_DEVICES"], envs[1]["CUDA_VISIBLE_DEVICES"]) == ("5", "7")
    with pytest.raises(RuntimeError, match="no free GPU"):
        claim_gpus(lock_dir, 1, env=envs[2], timeout_s=0)
    first.release()
    first.release()  # twice is harmless
    assert envs[0]["CUDA_VISIBLE_DEVICES"] == "5,7"
    with claim_gpus(lock_dir, 1, env=envs[2], timeout_s=0) as third:
        assert third.devices == [5] and third.env_value == "5"
    second.release()


def test_several_gpus_at_once_and_more_than_the_machine_has(tmp_path):
    env = {"PATHGEN_FAKE_GPU_COUNT": "4"}
    with claim_gpus(tmp_path, 1, env=dict(env), timeout_s=0) as one, \
            claim_gpus(tmp_path, 2, env=env, timeout_s=0) as two:
        assert one.devices == [0] and two.devices == [1, 2] and env["CUDA_VISIBLE_DEVICES"] == "1,2"
    with pytest.raises(RuntimeError, match="needs 5 GPUs but this machine has 4"):
        claim_gpus(tmp_path, 5, env=env, timeout_s=60)


def test_visible_gpu_count():
    assert visible_gpu_count({"PATHGEN_FAKE_GPU_COUNT": "4"}) == 4
    assert visible_gpu_count({"PATHGEN_FAKE_GPU_COUNT": "8", "CUDA_VISIBLE_DEVICES": "5,7"}) == 2
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == 1  # CUDA stops at an invalid entry
    assert gpu_slots.parse_visible_devices("GPU-ab12, 3") == ["GPU-ab12", 3]


def job(results: Path, rule: str = "zeroshot", **resources) -> SimpleNamespace:
    log = results / "logs" / rule / "b.m.log"
    return SimpleNamespace(log=[str(log)], resources=SimpleNamespace(**resources))


def test_job_gpus_claims_only_for_a_gpu_job_on_cuda(tmp_path, monkeypatch):
    for k in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(k)
    for k in ("CUDA_VISIBLE_DEVICES", gpu_slots.LOCK_DIR_ENV, gpu_slots.CLAIMED_ENV):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PATHGEN_FAKE_GPU_COUNT", "2")
    results = tmp_path / "results"
    with job_gpus(job(results, gpu=1), "auto") as claim:
        assert claim.devices == [0] and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert claim.lock_dir == gpu_lock_dir(results) and any(claim.lock_dir.glob("*.lock"))
        # another job of the run (its own env) gets the other device
        with claim_gpus(job_lock_dir(job(results, "mil")), 1, env={"PATHGEN_FAKE_GPU_COUNT": "2"},
                        timeout_s=0) as other:
            assert other.devices == [1]
        # a claim inside the job (or a process it starts) keeps the job's devices
        with job_gpus(job(results, "mil", gpu=1), "cuda", timeout_s=0) as inner:
            assert inner.devices == [] and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        child = subprocess.run([sys.executable, "-c", "import os; from pathgen.gpu_slots import claim_gpus; "
                                f"c = claim_gpus({str(claim.lock_dir)!r}, timeout_s=0); "
                                "print(c.devices, os.environ['CUDA_VISIBLE_DEVICES'])"],
                               capture_output=True, text=True, timeout=60)
        assert child.stdout.split() == ["[]", "0"], child.stderr
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and gpu_slots.CLAIMED_ENV not in os.environ
    for sm, device in [(job(results, gpu=1), "cpu"), (job(results, gpu=1), "cuda:1"),
                       (job(results), "auto"), (SimpleNamespace(log=["x.log"]), "auto")]:
        with job_gpus(sm, device, timeout_s=0) as claim:
            assert claim.devices == [] and "CUDA_VISIBLE_DEVICES" not in os.environ
    with job_gpus(job(results, "train_clip", gpu=1), "auto", n=2, timeout_s=0) as claim:  # training.gpus: 2
        assert claim.devices == [0, 1]
    with job_gpus(job(results, "train_clip", gpu=1), "auto", n=0, timeout_s=0) as claim:  # training.gpus: 0
        assert claim.devices == []


def test_the_lock_dir_follows_the_layouts_log(tmp_path, monkeypatch):
    """job_lock_dir reads <results>/logs/<rule>/<name>.log: the place paths.Layout.log gives."""
    from pathgen.config import validate_config
    from pathgen.paths import Layout

    monkeypatch.delenv(gpu_slots.LOCK_DIR_ENV, raising=False)
    cfg = validate_config({"results_dir": str(tmp_path / "out"), "demo": {"enabled": True}})
    sm = SimpleNamespace(log=[str(Layout(cfg).log("mil", "task.enc.abmil"))])
    assert job_lock_dir(sm) == gpu_lock_dir(cfg.results_dir) == tmp_path / "out" / ".gpu_slots"
    monkeypatch.setenv(gpu_slots.LOCK_DIR_ENV, str(tmp_path / "shared"))
    assert job_lock_dir(sm) == tmp_path / "shared"


def test_waiting_is_logged_once(tmp_path, caplog):
    env = {"PATHGEN_FAKE_GPU_COUNT": "1"}
    held = claim_gpus(tmp_path, 1, env=dict(env), timeout_s=0)
    start = time.monotonic()
    with pytest.raises(RuntimeError):
        claim_gpus(tmp_path, 1, env=env, timeout_s=0.3, poll_s=0.02)
    assert time.monotonic() - start >= 0.3
    assert sum("waiting" in r.getMessage() for r in caplog.records) == 1
    held.release()
