"""Managed serving (captioning.serve: managed): the caption chunk job starts its own
OpenAI-compatible server, sends every agent there and stops it; a server that dies mid-chunk is
restarted with nothing lost or written twice; one that never comes up fails the job with its
log and the fix, quarantining nothing. The server here is the stand-in
(pathgen_testkit.standin_server) run as a real process through engine: command."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from pathgen_testkit.mock_chat_server import MockChatServer
from pathgen.captioning.serving import plan_servers, server_command
from pathgen.config import ConfigError, validate_config
from pathgen.config.captioning import CaptioningConfig
from pathgen.runner import ChunkContext, InfrastructureError, run_chunk
from pathgen.runner.state import read_record, write_record
from pathgen_testkit.patches import write_selection


SLIDES = ["s0", "s1", "s2"]
PATCHES = 4


def standin(tmp_path, *extra) -> list[str]:
    return [sys.executable, "-m", "pathgen_testkit.standin_server", "--model", "{model}",
            "--host", "{host}", "--port", "{port}", "--latency", "0.02",
            "--pid-file", str(tmp_path / "server.pid"), "--lora-modules", "{lora_modules}", *extra]


def managed(tmp_path, *extra, **server) -> dict:
    return {"backend": "openai", "serve": "managed", "concurrency": 4,
            "openai": {"model": "base-vlm", "backoff_base_s": 0.05, "max_retries": 3},
            "server": {"engine": "command", "command": standin(tmp_path, *extra),
                       "startup_timeout_s": 30, "stop_grace_s": 5, **server}}


def chunk(tmp_path, captioning: dict) -> ChunkContext:
    """A caption chunk of SLIDES whose selection finished, with the params the rule gives."""
    from pathgen.runner.params import chunk_job_params

    cfg = validate_config({"results_dir": str(tmp_path / "res"), "captioning": captioning,
                           "tiling": {"patch_size_um": 128, "target_mpp": 0.5}})
    root = tmp_path / "sel"
    for s in SLIDES:
        write_selection(root, slide=s, n=PATCHES)
    params = chunk_job_params("caption", cfg)
    t = str(tmp_path / "out")  # the selection where write_selection puts it, outputs beside
    params["files"].update({
        "selection": f"{root}/selection/{{slide}}.csv", "patches_root": f"{root}/selection/patches",
        "captions": f"{t}/{{slide}}.jsonl", "rejects": f"{t}/{{slide}}.rejects.jsonl",
        "summary": f"{t}/{{slide}}.summary.json", "retry": f"{t}/{{chunk}}.retry",
        "progress": f"{t}/{{chunk}}.progress.json", "state:caption": f"{t}/state/{{slide}}.json",
        "state:select": f"{t}/up/{{slide}}.json"})
    params.update(members={s: f"{s}.svs" for s in SLIDES}, progress_interval_s=0.2)
    ctx = ChunkContext("caption", "chunk_00000", params["members"], params["settings"],
                       params["files"], params,
                       log_path=str(tmp_path / "logs" / "caption" / "chunk_00000.log"))
    for s in SLIDES:
        write_record(ctx.state_file("select", s), {"status": "done", "fingerprint": "sel"})
    return ctx


def captions(ctx, slide) -> list[dict]:
    return [json.loads(x) for x in ctx.file("captions", slide).read_text().splitlines()]


def server_gone(tmp_path) -> bool:
    pid = int((tmp_path / "server.pid").read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0


# -- command lines and config ---------------------------------------------------------------------
def test_engine_command_lines_follow_their_docs(tmp_path):
    for role, r in (("describe", 4), ("revise", 12)):
        (tmp_path / role).mkdir()
        (tmp_path / role / "adapter_config.json").write_text(json.dumps({"r": r}))
    c = CaptioningConfig.model_validate({
        "backend": "openai", "serve": "managed", "openai": {"model": "Qwen/Qwen2-VL-7B-Instruct"},
        "agents": {"describe": {"adapter": str(tmp_path / "describe")},
                   "revise": {"adapter": str(tmp_path / "revise")}}})
    plans = plan_servers(c)
    assert len(plans) == 1 and plans[0].roles == ["describe", "revise", "summarize"]  # ONE server
    plans[0].port = 8123
    cmd = server_command(c.server, plans[0], 0.9)
    assert cmd[:3] == ["vllm", "serve", "Qwen/Qwen2-VL-7B-Instruct"]
    assert cmd[cmd.index("--port") + 1] == "8123" and "--enable-lora" in cmd
    i = cmd.index("--lora-modules")
    assert cmd[i + 1:i + 3] == [f"describe={tmp_path / 'describe'}", f"revise={tmp_path / 'revise'}"]
    assert cmd[cmd.index("--max-lora-rank") + 1] == "16"
    sg = server_command(c.server.model_copy(update={"engine": "sglang"}), plans[0], 0.45)
    assert sg[:3] == ["python", "-m", "sglang.launch_server"] and "--mem-fraction-static" in sg
    two = CaptioningConfig.model_validate({"backend": "openai", "serve": "managed",
                                           "openai": {"model": "vlm", "summarize_model": "llm"}})
    assert [p.model for p in plan_servers(two)] == ["vlm", "llm"]  # side by side


@pytest.mark.parametrize("captioning, match", [
    ({"serve": "managed"}, "no agent uses the openai backend"),
    ({"backend": "openai", "serve": "managed", "agents": {"describe": {"endpoint": "http://x/v1"}}},
     "endpoint is set"),
    ({"backend": "openai", "agents": {"describe": {"adapter": "a"}}}, "needs captioning.serve: managed"),
    ({"backend": "openai", "serve": "managed", "server": {"engine": "command", "command": ["srv"]}},
     r"\{port\}"),
])
def test_serving_config_errors_name_the_key(captioning, match):
    with pytest.raises(ConfigError, match=match):
        validate_config({"captioning": captioning})


# -- the managed path -----------------------------------------------------------------------------
def test_managed_chunk_starts_serves_and_stops_its_server(tmp_path):
    ctx = chunk(tmp_path, managed(tmp_path))
    doc = run_chunk("caption", ctx, tmp_path / "done.json")
    assert [m["status"] for m in doc["members"]] == ["done"] * 3
    assert server_gone(tmp_path)
    log = (tmp_path / "logs" / "caption" / "chunk_00000" / "server.log").read_text()
    assert "ready on http://127.0.0.1:" in log and "SIGTERM" in log
    progress = json.loads(ctx.file("progress").read_text())
    assert progress["state"] == "finished" and progress["done"] == progress["total"] == 12
    # the same captions as a run against a server the user started (serve: external)
    ext = tmp_path / "ext"
    with MockChatServer(latency_s=0.01, served_models=["base-vlm"]) as srv:
        cfg = {**managed(ext), "serve": "external", "openai": {"model": "base-vlm",
                                                               "base_url": srv.base_url}}
        cfg.pop("server")
        ectx = chunk(ext, cfg)
        run_chunk("caption", ectx, ext / "done.json")
    for s in SLIDES:
        assert [r["caption"] for r in captions(ctx, s)] == [r["caption"] for r in captions(ectx, s)]
        assert captions(ctx, s)[0]["prompt_hash"] == captions(ectx, s)[0]["prompt_hash"]


def test_adapters_of_one_base_are_served_by_one_server(tmp_path):
    for role in ("describe", "revise"):
        (tmp_path / role).mkdir()
        (tmp_path / role / "adapter_config.json").write_text(json.dumps({"r": 8}))
    cfg = managed(tmp_path)
    cfg["agents"] = {r: {"adapter": str(tmp_path / r)} for r in ("describe", "revise")}
    ctx = chunk(tmp_path, cfg)
    doc = run_chunk("caption", ctx, tmp_path / "done.json")
    assert doc["counts"]["done"] == 3
    logs = list((tmp_path / "logs" / "caption" / "chunk_00000").glob("*.log"))
    assert [p.name for p in logs] == ["server.log"]  # one server for base + both adapters
    assert "adapters: ['describe', 'revise']" in logs[0].read_text()
    rec = captions(ctx, "s0")[0]
    assert rec["provenance"]["agents"]["describe"]["model"] == "describe"  # the adapter's name


def test_server_killed_mid_chunk_is_restarted_and_nothing_is_lost(tmp_path):
    ctx = chunk(tmp_path, managed(tmp_path, "--die-after", "7"))
    doc = run_chunk("caption", ctx, tmp_path / "done.json")
    assert doc["counts"]["done"] == 3, doc
    assert (tmp_path / "server.died").exists()  # it did die once
    for s in SLIDES:
        partial = [json.loads(x) for x in
                   ctx.file("captions", s).with_name(f"{s}.partial.jsonl").read_text().splitlines()]
        keys = [(r["x"], r["y"]) for r in partial]
        assert len(keys) == len(set(keys)) == PATCHES  # every item once
        assert all(r["status"] == "ok" for r in captions(ctx, s))
    assert server_gone(tmp_path)


def test_server_that_never_answers_fails_the_job_in_time_and_blames_no_slide(tmp_path):
    ctx = chunk(tmp_path, managed(tmp_path, "--never-ready", startup_timeout_s=3))
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError) as err:
        run_chunk("caption", ctx, tmp_path / "done.json")
    assert time.monotonic() - t0 < 3 + 10
    msg = str(err.value)
    assert "did not answer" in msg and "startup_timeout_s" in msg and "loading" in msg  # log tail
    assert all(read_record(ctx.state_file("caption", s)) is None for s in SLIDES)
    assert server_gone(tmp_path)


def test_server_out_of_memory_at_start_names_the_fix(tmp_path):
    ctx = chunk(tmp_path, managed(tmp_path, "--fail", "torch.OutOfMemoryError: CUDA out of memory."))
    with pytest.raises(InfrastructureError, match="gpu_memory_utilization") as err:
        run_chunk("caption", ctx, tmp_path / "done.json")
    assert "CUDA out of memory" in str(err.value)
    assert all(read_record(ctx.state_file("caption", s)) is None for s in SLIDES)


def test_fresh_chunk_starts_no_server(tmp_path):
    ctx = chunk(tmp_path, managed(tmp_path))
    run_chunk("caption", ctx, tmp_path / "done.json")
    (tmp_path / "server.pid").unlink()
    doc = run_chunk("caption", ctx, tmp_path / "done.json")
    assert doc["counts"]["reused"] == 3 and not (tmp_path / "server.pid").exists()


def test_status_shows_a_running_caption_chunk(tmp_path, capsys):
    import yaml

    from pathgen.cli import main
    from pathgen.paths import Layout
    from pathgen.runner.progress import ChunkProgress

    cfg = validate_config({"results_dir": str(tmp_path / "res"), "demo": {"enabled": False},
                           "slides": {"dir": str(tmp_path)}})
    path = Layout(cfg).stage_dir("caption") / "chunks" / "chunk_00002.progress.json"
    prog = ChunkProgress(path, "caption", "chunk_00002", 256, interval_s=0)
    prog.add(64)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    main(["status", "--config", str(tmp_path / "c.yaml")])
    out = capsys.readouterr().out
    assert "caption chunk_00002 running" in out and "64/256 items" in out and "ETA" in out
    prog.finish()
    main(["status", "--config", str(tmp_path / "c.yaml")])
    assert "running" not in capsys.readouterr().out


def test_measured_replies_differ_per_image(tmp_path):
    ctx = chunk(tmp_path, managed(tmp_path, "--reply", "measured"))
    run_chunk("caption", ctx, tmp_path / "done.json")
    caps = [r["caption"] for s in SLIDES for r in captions(ctx, s)]
    assert len(set(caps)) > 1 and all(caps)


def test_doctor_checks_the_engine_is_installed(tmp_path):
    from pathgen.doctor import engine_check

    ok = CaptioningConfig.model_validate(managed(tmp_path))
    assert sys.executable in engine_check(ok)
    vllm = CaptioningConfig.model_validate({"backend": "openai", "serve": "managed",
                                            "server": {"bin_dir": str(tmp_path / "no-env" / "bin")}})
    with pytest.raises(FileNotFoundError, match="envs/engines"):
        engine_check(vllm)


def test_cli_caption_with_managed_serving(tmp_path, capsys):
    import yaml

    from pathgen.cli import main

    csv_path, patches = write_selection(tmp_path / "sel", slide="s9", n=3)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"captioning": managed(tmp_path)}))
    out = tmp_path / "caps" / "s9.jsonl"
    rc = main(["caption", str(csv_path), "--patches-root", str(patches), "--out", str(out),
               "--config", str(tmp_path / "c.yaml")])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["n_ok"] == 3
    assert (tmp_path / "caps" / "server_logs" / "server.log").exists() and server_gone(tmp_path)


JOB = """
import json, sys
from types import SimpleNamespace
from pathgen.runner import run_chunk_job
p = json.loads(open(sys.argv[1]).read())
class Named(dict):
    def __getattr__(self, k): return self[k]
sm = SimpleNamespace(params=Named(p["params"]), wildcards=SimpleNamespace(chunk="chunk_00000"),
                     log=[p["log"]], output=SimpleNamespace(done=p["done"]), input=Named(),
                     resources=Named(gpu=1), threads=1)
run_chunk_job("caption", sm)
"""


def test_sigterm_to_the_job_stops_its_server(tmp_path):
    import signal
    import subprocess

    ctx = chunk(tmp_path, managed(tmp_path, "--latency", "2"))  # slow: still busy when stopped
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"params": ctx.params, "log": ctx.log_path,
                                "done": str(tmp_path / "done.json")}))
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(spec)], cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not ctx.file("progress").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the server answered and captioning began
    assert ctx.file("progress").exists(), "the job never started captioning"
    proc.send_signal(signal.SIGTERM)  # what SLURM sends at walltime / scancel
    assert proc.wait(30) != 0
    assert server_gone(tmp_path)
    assert not (tmp_path / "done.json").exists()  # stopped, not finished


def test_managed_server_runs_on_the_jobs_own_device_slot(tmp_path):
    """Two fake GPUs, device 0 held by another job (e.g. a features job): the caption job
    claims device 1 before its server starts, and the server inherits it."""
    import subprocess

    from pathgen.gpu_slots import claim_gpus

    ctx = chunk(tmp_path, managed(tmp_path))
    spec = tmp_path / "job.json"
    log = tmp_path / "results" / "logs" / "caption" / "chunk_00000.log"
    spec.write_text(json.dumps({"params": ctx.params, "log": str(log),
                                "done": str(tmp_path / "done.json")}))
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "PATHGEN_GPU_CLAIMED", "SLURM_JOB_ID")}
    env["PATHGEN_FAKE_GPU_COUNT"] = "2"
    other = dict(env)  # the features job's environment
    with claim_gpus(tmp_path / "results" / ".gpu_slots", 1, env=other) as held:
        assert held.devices == [0] and other["CUDA_VISIBLE_DEVICES"] == "0"
        proc = subprocess.run([sys.executable, "-c", JOB, str(spec)], cwd=tmp_path, env=env,
                              timeout=120)
    assert proc.returncode == 0
    server_log = (log.with_suffix("") / "server.log").read_text()
    assert "CUDA_VISIBLE_DEVICES=1" in server_log
