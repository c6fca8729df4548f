"""Incremental reruns: after a real run, dry runs schedule only what a change invalidates.

The workflow runs for real once on two small real Aperio slides (slides.dir, not the demo)
in chunks of 2, then `snakemake -n` must show:
  * add a slide      -> exactly the new chunk's jobs + downstream aggregates;
  * remove a slide   -> only its chunk's jobs (each finds nothing to redo) + aggregates;
  * captioning knob  -> no tiling/feature job;
  * another encoder  -> features (and downstream) for every chunk, no tiling job.
Per-slide (chunk) rules are those with a `chunk` wildcard in the initial plan. Expensive
aggregates (CLIP training and what follows) are left out with --omit-from; the demo's
aggregates are covered incrementally by tests/test_e2e_demo.py.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from pathgen_testkit.slide_files import write_real_slides
from pathgen_testkit.workspace import Workspace, parse_job_inputs, parse_jobs, small_settings

pytestmark = pytest.mark.slow

HEAVY = ("train_clip", "mil_splits", "mil", "build_instruct", "zeroshot", "report")
ENV = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


class Run:
    def __init__(self, root: Path):
        self.ws = Workspace(root / "ws")
        self.slides = root / "slides"
        self.spare = root / "spare"
        write_real_slides(self.slides, 2, size=768)
        write_real_slides(self.spare, 1, size=768, start=2)
        self.ws.write_config(**small_settings())  # the demo's small settings, on real slides
        self.ws.write_config(
            results_dir=str(self.ws.root / "results"), demo={"enabled": False},
            slides={"dir": str(self.slides)},
            features={"encoder": "tiny-demo", "batch_size": 32, "num_workers": 0, "device": "cpu"},
            cluster={"chunk_size": 2},
            encoders={"tiny-demo-b": {"kind": "open_clip", "arch": "pathgen-tiny-vit"}})
        rules = self.ws.list_rules()
        self.omit = [r for r in HEAVY if r in rules]
        plan = self.jobs()
        self.per_slide = {r for r, wc, _ in plan if "chunk" in wc}
        self.aggregates = {r for r, wc, _ in plan if "chunk" not in wc} - {"all"}
        self.ws.snakemake("--cores", "2", *self.args(), timeout=600, env=ENV)

    def args(self) -> list[str]:
        return ["--omit-from", *self.omit] if self.omit else []

    def jobs(self, **config_updates):
        if config_updates:
            saved = yaml_copy(self.ws.config)
            self.ws.write_config(**config_updates)
        try:
            dr = self.ws.dry_run(*self.args(), quiet=False)
        finally:
            if config_updates:
                self.ws.config = saved
                self.ws.write_config()
        self.last_text = dr.text
        return parse_jobs(dr.text)


def yaml_copy(d):
    import copy

    return copy.deepcopy(d)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = Run(tmp_path_factory.mktemp("incremental"))
    if "tile" not in r.per_slide:
        pytest.skip(f"no per-slide tiling rule in the workflow yet (per-slide: {r.per_slide})")
    return r


def test_up_to_date_after_run(run):
    assert [j for j in run.jobs() if j[0] != "all"] == []


def test_add_slide_runs_only_that_slide(run):
    new = run.slides / "slide_002.svs"
    shutil.copy(run.spare / "slide_002.svs", new)
    try:
        jobs = run.jobs()
    finally:
        new.unlink()
    per_slide = [(r, wc["chunk"]) for r, wc, _ in jobs if "chunk" in wc]
    assert {c for _, c in per_slide} == {"chunk_00001"}, per_slide  # chunk_00000 is full
    assert {r for r, _ in per_slide} == run.per_slide
    assert len(per_slide) == len(run.per_slide)  # one job per per-slide rule
    for rule, wc, reason in jobs:
        if "chunk" not in wc and rule != "all":
            assert rule in run.aggregates and "input" in reason.lower(), (rule, reason)


def test_remove_slide_reruns_only_aggregates(run):
    gone = run.slides / "slide_001.svs"
    parked = run.spare / "parked_slide_001.svs"
    shutil.move(gone, parked)
    try:
        jobs = run.jobs()
        inputs = parse_job_inputs(run.last_text)
    finally:
        shutil.move(parked, gone)
    # the chunk that lost a member reruns (its jobs find every remaining slide done)
    assert {j[1]["chunk"] for j in jobs if "chunk" in j[1]} <= {"chunk_00000"}
    for rule, wc, reason in jobs:
        if rule == "all" or "chunk" in wc:
            continue
        assert rule in run.aggregates, (rule, reason)
        assert "slide_001" not in inputs.get(rule, ""), f"{rule} still reads slide_001"


def test_caption_setting_does_not_retile_or_reextract(run):
    jobs = run.jobs(captioning={"token_budget": 60})
    rules = {r for r, _, _ in jobs}
    assert not rules & {"tile", "extract_features", "select_patches"}, rules
    if "caption" in run.per_slide:
        assert sum(r == "caption" for r, _, _ in jobs) == 1  # one chunk of 2 slides


def test_encoder_change_reextracts_but_does_not_retile(run):
    jobs = run.jobs(features={"encoder": "tiny-demo-b"})
    rules = [r for r, _, _ in jobs]
    assert "tile" not in rules
    if "extract_features" in run.per_slide:
        assert sorted(wc["chunk"] for r, wc, _ in jobs if r == "extract_features") == [
            "chunk_00000"]
    downstream = run.per_slide - {"tile", "make_demo_slide"}
    assert downstream <= set(rules), (downstream, rules)


def test_bad_slide_is_quarantined_then_fixed(run):
    """A truncated slide among good ones: the run succeeds, its state record says why, the
    aggregates run on the others; after the file is fixed only that slide is processed."""
    import json
    import subprocess

    good = run.spare / "slide_002.svs"
    bad = run.slides / "slide_bad.svs"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    run.ws.snakemake("--cores", "2", *run.args(), timeout=600, env=ENV)
    res = run.ws.root / "results"
    recs = {p.parent.parent.name + "/" + p.stem: json.loads(p.read_text())
            for p in res.rglob("state/*.json")}
    tile = next(r for k, r in recs.items() if k.endswith("slide_bad") and r["stage"] == "tile")
    assert tile["status"] == "failed" and "slide_bad.svs" in tile["error"] and tile["fix"]
    downstream = [r for r in recs.values() if r["slide_id"] == "slide_bad" and r["stage"] != "tile"]
    assert downstream and all(r["status"] == "blocked" for r in downstream)
    if "build_dataset" in run.aggregates:
        card = json.loads((res / "dataset" / "dataset_card.json").read_text())
        assert card["n_slides"] == 2
    status = subprocess.run([sys.executable, "-m", "pathgen.cli", "status", "--config",
                             str(run.ws.config_path)], capture_output=True, text=True,
                            cwd=run.ws.root)
    assert status.returncode == 1 and "slide_bad" in status.stdout, status.stdout + status.stderr
    assert "tile: 2 done, 1 failed" in status.stdout

    before = {k: r.get("finished") for k, r in recs.items()}
    shutil.copy(good, bad)  # the file is fixed
    run.ws.snakemake("--cores", "2", *run.args(), timeout=600, env=ENV)
    recs = {p.parent.parent.name + "/" + p.stem: json.loads(p.read_text())
            for p in res.rglob("state/*.json")}
    redone = {r["slide_id"] for k, r in recs.items() if before.get(k) != r.get("finished")}
    assert redone == {"slide_bad"}, redone
    assert all(r["status"] == "done" for r in recs.values())
