"""Rules mil and mil_splits run on what the rule passes them (params, input, output), not on the config."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

from pathgen.config import validate_config
from pathgen.mil import workflow as mil_workflow
from pathgen.mil.files import mil_fold_files, mil_run_files, mil_split_files
from pathgen.paths import Layout
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features

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
    mil_workflow.config_task_splits(cfg, "synth")
    expected = mil_workflow.task_benchmark(cfg, "synth", "synthenc", "abmil")
    L = Layout(cfg)
    out = tmp_path / "rule_out"
    mil = cfg.evaluation.mil
    # what rules/mil.smk passes (the same helpers its params call)
    sm = SimpleNamespace(
        threads=1, log=[str(tmp_path / "mil.log")],
        wildcards=SimpleNamespace(task="synth", encoder="synthenc", model="abmil"),
        input=SimpleNamespace(features=[], splits=str(L.mil_splits_summary("synth"))),
        output=SimpleNamespace(metrics=str(mil_run_files(out)["metrics"])),
        params=SimpleNamespace(settings=mil.model_dump(mode="json", exclude={"tasks", "encoders", "models"}),
                               task=mil_workflow.task_settings(cfg, "synth"),
                               features_dir=str(mil_workflow.task_features_dir(cfg, "synth", "synthenc")),
                               slides=mil_workflow.slide_files(cfg, {})))
    runpy.run_path(str(REPO / "workflow_scripts" / "mil.py"), init_globals={"snakemake": sm})
    got = json.loads(mil_run_files(out)["metrics"].read_text())
    assert got["mean"] == expected["mean"] and got["task"] == "synth" and got["n_folds"] == 2
    assert mil_fold_files(out, 1)["checkpoint"].is_file()


def test_splits_script_uses_params_only(tmp_path):
    """rule mil_splits: the task and the seed from params (a non-default seed: the folds must
    be the ones `pathgen mil-splits --task` writes with it), the folder from the output."""
    import yaml

    from pathgen.cli import main

    cfg = _cfg(tmp_path)
    cfg.evaluation.mil.seed = 11
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=True)))
    assert main(["mil-splits", "--task", "synth", "--config", str(config)]) == 0  # the reference
    L = Layout(cfg)
    out = tmp_path / "rule_splits"
    sm = SimpleNamespace(
        log=[str(tmp_path / "s.log")], wildcards=SimpleNamespace(task="synth"),
        input=SimpleNamespace(features=[]), output=SimpleNamespace(summary=str(out / L.mil_splits_summary("synth").name)),
        params=SimpleNamespace(task=mil_workflow.task_settings(cfg, "synth"), seed=11))
    runpy.run_path(str(REPO / "workflow_scripts" / "mil_splits.py"), init_globals={"snakemake": sm})
    want, got = mil_split_files(L.mil_splits_dir("synth")), mil_split_files(out)
    assert sorted(want) == sorted(got) == [0, 1]
    assert all(got[k].read_text() == want[k].read_text() for k in want)
    assert yaml.safe_load(Path(sm.output.summary).read_text())["n_folds"] == 2


def test_task_settings_round_trip_through_params(tmp_path):
    """The dumped task (rule param) validates back to the same task, presets included."""
    from pathgen.config.evaluation import MilTaskConfig

    own = _cfg(tmp_path).evaluation.mil.tasks["synth"]
    preset = MilTaskConfig(preset="bracs", labels=tmp_path / "labels.csv", folds=3)
    assert preset.classes == ["benign", "atypical", "malignant"] and preset.folds == 3  # filled, kept
    for t in (own, preset):
        assert MilTaskConfig.model_validate(t.model_dump(mode="json")) == t
