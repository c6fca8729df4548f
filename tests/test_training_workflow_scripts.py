"""The training rules' scripts run on what the rule passes (params, input, output, wildcards,
log): a stand-in `snakemake` object without `config` at all, so a script that re-read the
workflow config would fail here. Each matches what `pathgen train` / `baseline-data` do on
the whole config (the same stage fingerprints, the same pairs)."""

from __future__ import annotations

import hashlib
import json
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pathgen.config import ConfigError, validate_config
from pathgen.paths import Layout
from pathgen.training.model_features import resolve_model_features
from pathgen.training.workflow import (
    baseline_data_inputs,
    run_model_features,
    train_inputs,
    train_params,
)
from pathgen_testkit.training import caption_dataset, cfg_for, labels_csv, make_pairs, train

REPO = Path(__file__).resolve().parent.parent


class Named(SimpleNamespace):
    """Named values with Snakemake's Namedlist.items()."""

    def items(self):
        return vars(self).items()


def stand_in(tmp_path: Path, rule: str, *, params: dict, input: dict, output: dict, **wildcards):
    """What Snakemake hands a rule's script, minus `config` (named input/output as attributes)."""
    return SimpleNamespace(log=[str(tmp_path / f"{rule}.log")], threads=1,
                           params=Named(**params), wildcards=SimpleNamespace(**wildcards),
                           input=SimpleNamespace(**input),
                           output=SimpleNamespace(**{k: str(v) for k, v in output.items()}))


def run_script(name: str, sm) -> None:
    run_job(runpy.run_path, str(REPO / "workflow_scripts" / name), init_globals={"snakemake": sm})


def run_job(fn, *args, **kwargs) -> None:
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        fn(*args, **kwargs)
    finally:  # the script's setup_logging adds the job's log file to the root logger
        for h in root.handlers[len(handlers):]:
            h.close()
        root.handlers[:] = handlers


def test_train_clip_script_runs_on_params_input_output_only(tmp_path):
    make_pairs(tmp_path / "results" / "dataset", n=8, card=True)
    cfg = cfg_for(tmp_path)
    outs = Layout(cfg).training_outputs()
    run_script("train_clip.py", stand_in(tmp_path, "train_clip", params={"training": train_params(cfg)},
                                         input=train_inputs(cfg), output=outs))
    assert all(p.is_file() for p in outs.values())
    meta = json.loads(outs["meta"].read_text())
    assert meta["encoder"]["pathgen-demo-clip"]["pretrained"] == str(outs["final"])
    assert meta["baseline"] is None and meta["stages"][0]["num_samples"] == 8
    # `pathgen train` on the whole config plans the very same work: the stage is done
    plan = train(cfg, dry_run=True).stages[0]
    assert plan.skipped and plan.argv == meta["stages"][0]["argv"]


def test_baseline_scripts_run_on_params_input_output_only(tmp_path):
    st = {"labels": str(labels_csv(tmp_path / "labels.csv")), "template": "Slide: {}.",
          "label_texts": {"tumor": "tumor", "normal": "normal"}}  # over the demo overlay's
    cfg = cfg_for(tmp_path, baselines=["slide_text"], slide_text=st)
    caption_dataset(Layout(cfg).dataset_dir)
    B = Layout(cfg, "slide_text")
    pairs = B.training_data_files()
    run_script("baseline_data.py", stand_in(
        tmp_path, "baseline_data", params={"slide_text": cfg.training.slide_text.model_dump(mode="json")},
        input=baseline_data_inputs(cfg), output=pairs, baseline="slide_text"))
    written = pd.read_csv(pairs["csv"], sep="\t")
    assert len(written) == 6 and set(written["title"]) == {"Slide: tumor.", "Slide: normal."}
    # ... and `pathgen baseline-data` on the same config writes the same pairs
    from pathgen.cli import main

    (tmp_path / "c.yaml").write_text(json.dumps({"results_dir": str(tmp_path / "results"),
                                                 "training": {"slide_text": st}}))
    assert main(["baseline-data", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / pairs["csv"].name).read_bytes() == pairs["csv"].read_bytes()

    outs = B.training_outputs()
    run_script("train_baseline.py", stand_in(
        tmp_path, "train_baseline", params={"training": train_params(cfg)},
        input=train_inputs(cfg, "slide_text"), output=outs, baseline="slide_text"))
    meta = json.loads(outs["meta"].read_text())
    assert meta["baseline"] == "slide_text" and list(meta["encoder"]) == ["pathgen-demo-clip-slide_text"]
    assert meta["stages"][0]["num_samples"] == 6
    plan = train(cfg, "slide_text", dry_run=True).stages[0]
    assert plan.skipped and plan.argv == meta["stages"][0]["argv"]


def test_train_inputs_name_the_default_pairs_and_model_config(tmp_path):
    cfg = cfg_for(tmp_path, stages=[{"name": "a", "data": [str(tmp_path / "x.csv")]}])
    files = train_inputs(cfg)
    # no stage trains on the caption dataset: the rule does not wait for it
    assert files == {"sources": [str(tmp_path / "x.csv")], "model_config": str(tmp_path / "pathgen-micro.json")}


def model_settings(cfg, name: str) -> dict:
    """params.settings of rule extract_model_features (rules/common.smk get_model_feature_settings)."""
    return {"encoder": name, "encoder_spec": cfg.encoder_spec(name).model_dump(mode="json"),
            "features": cfg.features.model_dump(mode="json", exclude={"encoder"})}


def trained_cfg(tmp_path: Path, batch_size: int = 7):
    weights = tmp_path / "final.pt"
    weights.write_bytes(b"weights v1")
    return validate_config({"results_dir": str(tmp_path / "results"),
                            "features": {"batch_size": batch_size},
                            "encoders": {"clip": {"kind": "open_clip", "arch": "pathgen-tiny-vit",
                                                  "pretrained": str(weights)}}}), weights


def test_model_features_come_from_the_params(tmp_path, caplog):
    cfg, weights = trained_cfg(tmp_path)
    mf = resolve_model_features(model_settings(cfg, "clip"), weights)
    assert mf.name == "clip" and mf.features.encoder == "clip" and mf.features.batch_size == 7
    assert mf.spec == cfg.encoder_spec("clip")
    assert mf.settings["weights_sha256"] == hashlib.sha256(b"weights v1").hexdigest()
    weights.write_bytes(b"weights v2")  # retrained: the fingerprint settings change
    assert resolve_model_features(model_settings(cfg, "clip"), weights).settings != mf.settings
    other = tmp_path / "other.pt"  # weights that are not the ones encoders.clip names
    other.write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="pathgen.training.model_features"):
        resolve_model_features(model_settings(cfg, "clip"), other)
    assert "encoders.clip.pretrained" in caplog.text
    with pytest.raises(ConfigError, match="encoder_spec"):
        resolve_model_features({"encoder": "clip", "features": {}}, weights)


def test_model_features_job_uses_the_params_not_the_config(tmp_path, monkeypatch):
    import pathgen.runner.job
    from pathgen.training.workflow import model_feature_files

    cfg, weights = trained_cfg(tmp_path, batch_size=7)
    seen = {}
    monkeypatch.setattr(pathgen.runner.job, "run_chunk",
                        lambda stage, ctx, out, on_error: seen.update(ctx=ctx, stage=stage))
    # the workflow config differs from the params in features.batch_size and lacks the encoder:
    # the job must take both from the params (the rerun trigger) and never read the config
    sm = stand_in(tmp_path, "extract_model_features",
                  params={"members": {"s1": "s1.svs"}, "settings": model_settings(cfg, "clip"),
                          "files": model_feature_files(cfg, "clip"), "upstream": "tile"},
                  input={"weights": str(weights)}, output={"done": str(tmp_path / "done.json")},
                  model="clip", chunk="chunk_00000")
    sm.config = {"results_dir": str(tmp_path / "results"), "features": {"batch_size": 3}}
    run_job(run_model_features, sm)
    ctx = seen["ctx"]
    assert seen["stage"].name == "features"
    from pathgen.features.chunk_stage import sections

    fc, name, spec = sections(ctx.settings)
    assert fc.batch_size == 7 and name == "clip" and spec == cfg.encoder_spec("clip")
    assert ctx.file("features", "s1") == Layout(cfg).features("s1", "clip")
    assert ctx.settings["weights_sha256"] == hashlib.sha256(b"weights v1").hexdigest()
