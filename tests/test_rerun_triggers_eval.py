"""Rerun triggers of the evaluation and report rules (issue 13): what their jobs now take from
params (the export's batch size, the MIL seed, the report's shown config) reruns exactly the
jobs it shapes; a spare encoder definition reruns none of them."""

from __future__ import annotations

import copy
from pathlib import Path

from pathgen_testkit.workspace import Workspace, fake_slide_workspace, parse_jobs

EVAL = {"zeroshot", "zeroshot_export", "zeroshot_table", "mil_splits", "mil", "mil_table"}


def build_workspace(root: Path) -> Workspace:
    """The `ws` fixture's workspace (tests/conftest.py: a finished run, shared by the module)."""
    bench = root / "zs_bench"  # a user's ImageFolder benchmark and MIL task (inputs)
    (bench / "tumor").mkdir(parents=True)
    (root / "labels.csv").write_text("case_id,slide_id,label\nc0,TCGA-FAKE-00000,a\nc1,TCGA-FAKE-00001,b\n")
    (root / "feats").mkdir()
    zeroshot = {"benchmarks": {"zs": {"root": str(bench), "layout": "imagefolder"}},
                "models": ["tiny-demo"], "clip_benchmark_export": True}
    mil = {"tasks": {"t": {"labels": str(root / "labels.csv"), "classes": ["a", "b"], "folds": 2,
                           "features_dir": str(root / "feats")}}, "models": ["abmil"]}
    return fake_slide_workspace(root / "ws", 2, cluster={"chunk_size": 2}, training={"enabled": False},
                                evaluation={"mil": mil, "zeroshot": zeroshot})


def rules_after(ws, **updates) -> set[str]:
    saved = copy.deepcopy(ws.config)
    ws.write_config(**updates)
    try:
        return {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
    finally:
        ws.config = saved
        ws.write_config()


def test_zeroshot_batch_size_reruns_zeroshot_and_the_export(ws):
    """It changes the floats of the embeddings and the export's printed commands."""
    rules = rules_after(ws, evaluation={"zeroshot": {"batch_size": 3}})
    assert {"zeroshot", "zeroshot_export"} <= rules, rules
    assert rules <= {"zeroshot", "zeroshot_export", "zeroshot_table", "build_report", "all"}, rules


def test_mil_seed_reruns_splits_and_mil_only(ws):
    rules = rules_after(ws, evaluation={"mil": {"seed": 9}})
    assert {"mil_splits", "mil"} <= rules, rules
    assert rules <= {"mil_splits", "mil", "mil_table", "build_report", "all"}, rules


def test_shown_setting_reruns_the_report_only(ws):
    """A setting the page shows ("Configuration used": the on_slide_error policy) reruns the
    report; an execution-only setting (resources) reruns neither it nor the evaluation."""
    assert "build_report" in rules_after(ws, on_slide_error="fail")
    assert not rules_after(ws, resources={"default": {"mem_mb": 1234}}) & ({"build_report"} | EVAL)


def test_spare_encoder_reruns_no_evaluation_or_report(ws):
    spare = {"encoders": {"spare": {"kind": "open_clip", "arch": "ViT-B-16"}}}
    assert rules_after(ws, **spare) <= {"all"}
