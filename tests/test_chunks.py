"""Slide chunks: stable registry, per-slide skip/quarantine inside a chunk job, status table."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pathgen.config import ConfigError, validate_config
from pathgen.paths import Layout
from pathgen.runner import ChunkContext, ChunkFailed, get_stage, run_chunk
from pathgen.runner.chunks import assign, plan_chunks, read_registry
from pathgen.runner.params import chunk_job_params
from pathgen.runner.stage import STAGES
from pathgen.runner.state import collect, status_table


def ids(n, start=0):
    return [f"s{i:03d}" for i in range(start, start + n)]


# -- registry --------------------------------------------------------------------------------------
def test_adding_slides_never_moves_existing_ones(tmp_path):
    reg = tmp_path / "chunks.tsv"
    first = plan_chunks(ids(10), reg, 4)
    assert [len(m) for m in first.values()] == [4, 4, 2]
    before = read_registry(reg)
    # new slides sorting *before* the old ones: order-based schemes would shift everything
    grown = plan_chunks(["a_new", *ids(10), "b_new", "c_new"], reg, 4)
    after = read_registry(reg)
    assert all(after[s] == c for s, c in before.items())
    assert grown["chunk_00002"] == ["s008", "s009", "a_new", "b_new"]  # last chunk filled first
    assert grown["chunk_00003"] == ["c_new"]


def test_removed_slides_keep_their_place(tmp_path):
    reg = tmp_path / "chunks.tsv"
    plan_chunks(ids(6), reg, 3)
    without = plan_chunks([s for s in ids(6) if s != "s001"], reg, 3)
    assert without["chunk_00000"] == ["s000", "s002"]
    back = plan_chunks(ids(6), reg, 3)
    assert back["chunk_00000"] == ["s000", "s001", "s002"]


def test_lower_chunk_size_moves_only_the_overflow():
    reg = assign(ids(6), {}, 6)
    smaller = assign(ids(6), reg, 4)
    assert [smaller[s] for s in ids(4)] == ["chunk_00000"] * 4
    assert {smaller["s004"], smaller["s005"]} == {"chunk_00001"}


def test_chunk_size_one_is_one_job_per_slide(tmp_path):
    chunks = plan_chunks(ids(3), tmp_path / "r.tsv", 1)
    assert list(chunks.values()) == [["s000"], ["s001"], ["s002"]]


def test_bad_registry_line_names_file_and_line(tmp_path):
    reg = tmp_path / "chunks.tsv"
    reg.write_text("slide_id\tchunk\ns000 chunk_00000\n")
    with pytest.raises(ValueError, match=r"chunks.tsv line 2"):
        read_registry(reg)


def test_chunk_size_follows_max_job_minutes():
    cfg = validate_config({"cluster": {"chunk_size": 64, "max_job_minutes": 600},
                           "resources": {"caption": {"runtime": 30}}})
    assert cfg.chunk_size() == 20  # 600 min / 30 min for the heaviest per-slide rule
    real = {"demo": {"enabled": False}, "slides": {"dir": "/data"}}
    assert validate_config(real).chunk_size() == 64  # the defaults fit 64 slides in 24 h
    with pytest.raises(ConfigError, match="chunk_size"):
        validate_config({"cluster": {"group_components": {"slide": 2}}})


# -- the chunk loop ---------------------------------------------------------------------------------
def chunk_ctx(cfg, stage, members, slides_dir, **params):
    """A chunk job's context as the rule would give it (parse-time params of ``cfg``)."""
    params = {**chunk_job_params(stage, cfg), "mpp": {}, **params,
              "members": {s: str(slides_dir / f"{s}.svs") for s in members}}
    return ChunkContext(stage, "chunk_00000", params["members"], params["settings"],
                        params["files"], params, log_path=f"{stage}.log")


def fake_stage(monkeypatch, name, fn):
    """Replace the registered stage ``name``'s per-slide work with ``fn``."""
    monkeypatch.setitem(STAGES, name, dataclasses.replace(get_stage(name), run=fn, open=None))


def touch_outputs(c, slide):
    for k in get_stage(c.stage).outputs:
        p = c.file(k, slide)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("ok")


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    """A real-slides config whose `tile` stage is a fake that fails on request."""
    slides = tmp_path / "slides"
    slides.mkdir()
    for s in ids(4):
        (slides / f"{s}.svs").write_bytes(b"x")
    cfg = validate_config({"results_dir": str(tmp_path / "res"), "demo": {"enabled": False},
                           "slides": {"dir": str(slides)}})
    calls = []

    def fake_tile(c, slide):
        calls.append(slide)
        if (slides / f"{slide}.svs").read_bytes() == b"bad":
            raise RuntimeError(f"cannot read {slide}")
        touch_outputs(c, slide)
        return {"n_patches": 1}

    fake_stage(monkeypatch, "tile", fake_tile)
    c = chunk_ctx(cfg, "tile", ids(4), slides)
    c.settings = {"a": 1}
    c.calls, c.slides_dir, c.cfg, c.layout = calls, slides, cfg, Layout(cfg)
    c.monkeypatch = monkeypatch
    return c


def run_tile(ctx, members=None, **kw):
    out = ctx.layout.chunk_done("tile", "chunk_00000")
    ctx.members = {s: str(ctx.slides_dir / f"{s}.svs") for s in (members or ids(4))}
    return run_chunk("tile", ctx, out, **kw)


def test_bad_slide_is_quarantined_and_the_chunk_finishes(ctx):
    (ctx.slides_dir / "s001.svs").write_bytes(b"bad")
    doc = run_tile(ctx)
    assert [m["status"] for m in doc["members"]] == ["done", "failed", "done", "done"]
    rec = json.loads(ctx.layout.slide_state("tile", "s001").read_text())
    assert rec["error"] == "RuntimeError: cannot read s001" and rec["attempts"] == 1
    assert "tile.log" in rec["fix"]
    # the downstream stage marks it blocked, not failed
    fake_stage(ctx.monkeypatch, "features", touch_outputs)
    fctx = chunk_ctx(ctx.cfg, "features", ids(4), ctx.slides_dir)
    feats = run_chunk("features", fctx, ctx.layout.chunk_done("features", "chunk_00000"))
    assert [m["status"] for m in feats["members"]] == ["done", "blocked", "done", "done"]
    table = collect({"tile": ctx.layout.slide_state_dir("tile"),
                     "features": ctx.layout.slide_state_dir("features")}, ids(4))
    text, counts = status_table(table, ["tile", "features"])
    assert counts["tile"] == {"done": 3, "failed": 1, "blocked": 0, "pending": 0}
    assert counts["features"]["blocked"] == 1
    assert "s001" in text and "cannot read s001" in text


def test_rerun_redoes_only_new_changed_or_failed_slides(ctx):
    (ctx.slides_dir / "s001.svs").write_bytes(b"bad")
    run_tile(ctx)
    ctx.calls.clear()
    run_tile(ctx)  # nothing changed: finished slides reused, the failed one retried
    assert ctx.calls == ["s001"]
    assert json.loads(ctx.layout.slide_state("tile", "s001").read_text())["attempts"] == 2
    (ctx.slides_dir / "s001.svs").write_bytes(b"fixed")  # the file is fixed
    ctx.calls.clear()
    (ctx.slides_dir / "s004.svs").write_bytes(b"x")  # and a slide joins the chunk
    doc = run_tile(ctx, members=[*ids(4), "s004"])
    assert ctx.calls == ["s001", "s004"]
    assert all(m["status"] == "done" for m in doc["members"])
    ctx.calls.clear()
    ctx.settings = {"a": 2}  # a setting that shapes the outputs: every slide is redone
    run_tile(ctx)
    assert ctx.calls == ids(4)


def test_missing_output_is_redone(ctx):
    run_tile(ctx)
    ctx.layout.coords("s002").unlink()
    ctx.calls.clear()
    run_tile(ctx)
    assert ctx.calls == ["s002"]


def test_strict_mode_finishes_the_chunk_then_fails(ctx):
    (ctx.slides_dir / "s000.svs").write_bytes(b"bad")
    with pytest.raises(ChunkFailed, match="s000"):
        run_tile(ctx, on_error="fail")
    assert ctx.calls == ids(4)  # the others still ran
    assert json.loads(ctx.layout.slide_state("tile", "s003").read_text())["status"] == "done"


def test_missing_slide_file_gets_a_fix_naming_the_path(ctx):
    from pathgen.runner.job import fix_for

    err = FileNotFoundError(2, "No such file", "/data/x.svs")
    assert "/data/x.svs" in fix_for(err, None) and "sample_sheet" in fix_for(err, None)


def test_caption_item_failures_bump_the_retry_generation(tmp_path):
    from pathgen.captioning.chunk_stage import MAX_ITEM_RETRY_RUNS, bump_retry, retry_generation
    from pathgen.runner.state import write_record

    cfg = validate_config({"results_dir": str(tmp_path)})
    L = Layout(cfg)
    c = chunk_ctx(cfg, "caption", ["s0"], tmp_path)
    retry = L.chunk_retry("caption", "chunk_00000")
    assert c.file("retry") == retry
    write_record(L.slide_state("caption", "s0"), {"status": "done", "info": {"n_failed": 2}})
    assert retry_generation(retry) == 0
    for n in range(1, MAX_ITEM_RETRY_RUNS + 2):
        bump_retry(c)
        assert retry_generation(retry) == min(n, MAX_ITEM_RETRY_RUNS)  # bounded
    write_record(L.slide_state("caption", "s0"), {"status": "done", "info": {"n_failed": 0}})
    bump_retry(c)
    assert retry_generation(retry) == MAX_ITEM_RETRY_RUNS  # clean run: param stable, no rerun


def test_status_cli_exit_code_and_table(ctx, capsys, tmp_path):
    from pathgen.cli import main

    (ctx.slides_dir / "s001.svs").write_bytes(b"bad")
    run_tile(ctx)
    cfg_path = tmp_path / "c.yaml"
    import yaml

    cfg_path.write_text(yaml.safe_dump(ctx.cfg.model_dump(mode="json")))
    assert main(["status", "--config", str(cfg_path), "--failed"]) == 1
    out = capsys.readouterr().out
    assert "s001" in out and "s000" not in out.split("\n\n")[0].split("\n", 1)[1]
    assert "tile: 3 done, 1 failed" in out


def test_job_reads_slide_files_from_its_members_param(ctx, monkeypatch):
    """The rule's `members` param maps each member to its slide file: the job takes the path from
    there and never re-lists the run's slides (at 10k slides that is a directory walk per job)."""
    import pathgen.cohort

    monkeypatch.setattr(pathgen.cohort, "list_slides", lambda cfg: pytest.fail("job re-listed slides"))
    moved = ctx.slides_dir / "elsewhere"
    moved.mkdir()
    (moved / "s000.svs").write_bytes(b"x")
    ctx.members = {"s000": str(moved / "s000.svs")}
    assert ctx.slide_path("s000") == moved / "s000.svs"
    assert get_stage("tile").input_key(ctx, "s000")  # identity of the moved file


# -- declared stages: open/close hooks, run_many, infrastructure failures ------------------------
def hooks(monkeypatch, name, **kw):
    events = []
    st = dataclasses.replace(get_stage(name), open=lambda c: events.append("open"),
                             close=lambda c: events.append("close"), **kw)
    monkeypatch.setitem(STAGES, name, st)
    return events


def test_open_runs_only_when_a_slide_has_work_and_close_always_follows(ctx, monkeypatch):
    events = hooks(monkeypatch, "tile", run=get_stage("tile").run)
    run_tile(ctx)
    assert events == ["open", "close"]
    events.clear()
    run_tile(ctx)  # every slide fresh: no model is loaded, no server started
    assert events == []


def test_close_runs_when_the_job_is_stopped(ctx, monkeypatch):
    (ctx.slides_dir / "s000.svs").write_bytes(b"changed")
    events = []

    def stopped(c, slide):
        raise KeyboardInterrupt

    monkeypatch.setitem(STAGES, "tile", dataclasses.replace(
        get_stage("tile"), run=stopped, open=lambda c: events.append("open"),
        close=lambda c: events.append("close")))
    with pytest.raises(KeyboardInterrupt):
        run_tile(ctx)
    assert events == ["open", "close"]


def test_infrastructure_failure_fails_the_job_and_quarantines_nothing(ctx, monkeypatch):
    from pathgen.runner import InfrastructureError

    def server_down(c):
        raise InfrastructureError("model server did not start")

    monkeypatch.setitem(STAGES, "tile", dataclasses.replace(get_stage("tile"), open=server_down))
    with pytest.raises(InfrastructureError, match="did not start"):
        run_tile(ctx)
    assert not ctx.layout.slide_state_dir("tile").exists()  # no slide was blamed
    assert ctx.calls == []


def test_run_many_records_each_slide_as_it_reports(ctx, monkeypatch):
    from pathgen.runner.state import read_record

    seen = []

    def many(c, slides, report):
        for s in slides:  # the runner writes each record the moment it is reported
            if s == "s001":
                report(s, RuntimeError("bad patches"))
            else:
                touch_outputs(c, s)
                report(s, {"n": 1})
            seen.append(read_record(ctx.layout.slide_state("tile", s))["status"])

    monkeypatch.setitem(STAGES, "tile", dataclasses.replace(get_stage("tile"), run_many=many))
    doc = run_tile(ctx)
    assert seen == ["done", "failed", "done", "done"]
    assert [m["status"] for m in doc["members"]] == seen
    assert read_record(ctx.layout.slide_state("tile", "s001"))["error"] == "RuntimeError: bad patches"
