"""Rule mil's script runs on what the rule passes it (params, input, output), not on the config."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

from pathgen.config import validate_config
from pathgen.mil import api
from pathgen.mil.synthetic import synthetic_cohort, write_synthetic_features
from pathgen.paths import Layout

REPO = Path(__file__).resolve().parent.parent


def _cfg(tmp_path):
    t = synthetic_cohort(10, seed=3)
    t.to_csv(tmp_path / "labels.csv", index=False)
    write_synthetic_features(tmp_path / "feats", t, ["c0", "c1"], dim=8, n_patches=(4, 10), seed=3)
    task = {"labels": str(tmp_path / "labels.csv"), "classes": ["c0", "c1"], "folds": 2,
            "features_dir": str(tmp_path / "feats")}
    return validate_config({"results_dir": str(tmp_path / "results"), "evaluation": {"mil": {
        "tasks": {"synth": task}, "models": ["abmil"], "epochs": 2, "heatmap_slides": 0,
        "device": "cpu"}}})


def test_script_needs_no_config_and_matches_the_cli_entry_point(tmp_path):
    cfg = _cfg(tmp_path)
    api.task_splits(cfg, "synth")
    expected = api.task_benchmark(cfg, "synth", "synthenc", "abmil")
    L = Layout(cfg)
    out = tmp_path / "rule_out"
    mil = cfg.evaluation.mil
    # what rules/mil.smk passes (the same helpers its params call)
    sm = SimpleNamespace(
        config={}, threads=1, log=[str(tmp_path / "mil.log")],
        wildcards=SimpleNamespace(task="synth", encoder="synthenc", model="abmil"),
        input=SimpleNamespace(features=[], splits=str(L.mil_splits_summary("synth"))),
        output=SimpleNamespace(metrics=str(Layout.mil_run_files(out)["metrics"])),
        params=SimpleNamespace(settings=mil.model_dump(mode="json", exclude={"tasks", "encoders", "models"}),
                               task=api.get_task(cfg, "synth").model_dump(mode="json"),
                               features_dir=str(api.task_features_dir(cfg, "synth", "synthenc")),
                               slides=api.slide_files(cfg, {})))
    runpy.run_path(str(REPO / "workflow_scripts" / "mil.py"), init_globals={"snakemake": sm})
    got = json.loads(Layout.mil_run_files(out)["metrics"].read_text())
    assert got["mean"] == expected["mean"] and got["task"] == "synth" and got["n_folds"] == 2
    assert Layout.mil_fold_files(out, 1)["checkpoint"].is_file()


def test_task_settings_round_trip_through_params(tmp_path):
    """The dumped task (rule param) validates back to the same task, presets included."""
    from pathgen.config.evaluation import MilTaskConfig

    own = _cfg(tmp_path).evaluation.mil.tasks["synth"]
    preset = MilTaskConfig(preset="bracs", labels=tmp_path / "labels.csv", folds=3)
    assert preset.classes == ["benign", "atypical", "malignant"] and preset.folds == 3  # filled, kept
    for t in (own, preset):
        assert MilTaskConfig.model_validate(t.model_dump(mode="json")) == t
