"""The slide_text baseline: its pairs (same patches, the slide's label sentence), its own
training folder and schedule, the trained-model feature rule's inputs and the report verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pathgen.config import ConfigError, validate_config
from pathgen.dataset.files import dataset_files
from pathgen.dataset.pathgen_json import write_pathgen_json
from pathgen.paths import Layout
from pathgen.report.comparison import compared_models, mil_rows, verdict, zeroshot_rows
from pathgen.training.baselines import build_slide_text_dataset, read_slide_labels, slide_text_pairs
from pathgen.training.workflow import SLIDE_TEXT_SOURCES, baseline_data_inputs, model_feature_encoders, train_inputs
from pathgen_testkit.training import SLIDES, caption_dataset, labels_csv, train


def sources(ds: Path) -> dict[str, Path]:
    """The caption-dataset files the baseline reads, in ``ds`` (as rule baseline_data passes them)."""
    return {k: v for k, v in dataset_files(ds).items() if k in SLIDE_TEXT_SOURCES}


def demo_cfg(tmp_path: Path, **training) -> object:
    base = {"baselines": ["slide_text"],
            "slide_text": {"labels": str(labels_csv(tmp_path / "labels.csv")),
                           "template": "A slide diagnosed as {}.",
                           # normal: the label's own word (over the demo overlay's text)
                           "label_texts": {"tumor": "a malignant tumor", "normal": "normal"}}}
    base.update(training)
    return validate_config({"results_dir": str(tmp_path / "results"), "training": base})


def test_pairs_are_the_same_patches_with_the_slide_sentence(tmp_path):
    ds = caption_dataset(tmp_path / "dataset")
    cfg = demo_cfg(tmp_path)
    st = cfg.training.slide_text
    pairs, card = slide_text_pairs(sources(ds), read_slide_labels(st.labels, "label"), st.sentence)
    src = pd.read_csv(ds / "open_clip.csv", sep="\t")
    assert list(pairs["filepath"]) == list(src["filepath"][:6])  # s3 has no label: left out
    assert list(pairs["title"]) == ["A slide diagnosed as a malignant tumor."] * 3 + \
        ["A slide diagnosed as normal."] * 3
    assert card["n_pairs"] == 6 and card["n_slides"] == 2 and card["n_unlabelled_slides"] == 1


def test_build_writes_a_dataset_the_trainer_reads(tmp_path):
    cfg = demo_cfg(tmp_path)
    labels_csv(tmp_path / "labels.csv", {**SLIDES, "s3": "normal"})  # every slide labelled
    caption_dataset(Layout(cfg).dataset_dir)
    out = Layout(cfg, "slide_text").training_data_files()
    inputs = baseline_data_inputs(cfg)  # what rule baseline_data passes
    card = build_slide_text_dataset(cfg.training.slide_text, {k: Path(inputs[k]) for k in SLIDE_TEXT_SOURCES},
                                    Path(inputs["labels"]), out)
    written = pd.read_csv(out["csv"], sep=card["csv_separator"])
    assert len(written) == 9 and json.loads(out["card"].read_text())["baseline"] == "slide_text"
    # the baseline trains on it with the main CLIP's schedule, in its own folder
    main, base = train(cfg, dry_run=True).stages[0], train(cfg, dry_run=True, baseline="slide_text").stages[0]
    root = tmp_path / "results" / "training"
    assert base.argv[base.argv.index("--train-data") + 1] == str(out["csv"])
    assert base.checkpoint.startswith(str(root / "baselines" / "slide_text" / "pathgen-clip"))
    assert base.num_samples == 9

    def schedule(argv):  # flags minus the data and the folders
        skip = {"--train-data", "--logs"}
        return [a for i, a in enumerate(argv) if i == 0 or argv[i - 1] not in skip]
    assert schedule(base.argv) == schedule(main.argv)  # same flags, epochs, lr, seed
    with pytest.raises(ConfigError, match="not in training.baselines"):
        train(cfg.model_copy(update={"training": cfg.training.model_copy(update={"baselines": []})}),
              dry_run=True, baseline="slide_text")


def test_cli_baseline_data_on_plain_paths(tmp_path, capsys):
    from pathgen.cli import main

    ds = caption_dataset(tmp_path / "dataset")
    # real slides, so the built-in defaults without the demo overlay: label_texts = the labels
    (tmp_path / "c.yaml").write_text(f"demo: {{enabled: false}}\nslides: {{dir: {tmp_path}}}\n")
    rc = main(["baseline-data", "--config", str(tmp_path / "c.yaml"), "--dataset", str(ds), "--labels", str(labels_csv(tmp_path / "l.csv")),
               "--template", "Slide: {}.", "--out", str(tmp_path / "out"),
               "--set", f"results_dir={tmp_path / 'results'}"])
    assert rc == 0 and "6 pairs from 2 slides" in capsys.readouterr().out
    pairs = pd.read_csv(tmp_path / "out" / "open_clip.csv", sep="\t")
    assert set(pairs["title"]) == {"Slide: tumor.", "Slide: normal."}


def test_inconsistent_or_unlabelled_datasets_are_clear_errors(tmp_path):
    ds = caption_dataset(tmp_path / "dataset")
    cfg = demo_cfg(tmp_path)
    st = cfg.training.slide_text
    with pytest.raises(ConfigError, match="no captioned slide has a label"):
        slide_text_pairs(sources(ds), {"other": "tumor"}, st.sentence)
    write_pathgen_json(ds / "pathgen.json", [{"slide_id": "s1", "x": 0, "y": 0, "caption": "c"}])
    with pytest.raises(ConfigError, match="rebuild the caption dataset"):
        slide_text_pairs(sources(ds), SLIDES, st.sentence)
    bad = tmp_path / "bad.csv"
    bad.write_text("slide,label\ns1,tumor\n")
    with pytest.raises(ConfigError, match="slide_id"):
        read_slide_labels(bad, "label")
    with pytest.raises(FileNotFoundError, match="training.slide_text.labels"):
        read_slide_labels(tmp_path / "nope.csv", "label")


def test_config_checks_and_default_labels():
    with pytest.raises(ConfigError, match="baselines"):
        validate_config({"training": {"baselines": ["captions"]}})
    with pytest.raises(ConfigError, match="template"):
        validate_config({"training": {"slide_text": {"template": "no slot"}}})
    demo = validate_config({"training": {"baselines": ["slide_text"]}})
    assert baseline_data_inputs(demo)["labels"] == str(Layout(demo).demo_labels)
    real = validate_config({"demo": {"enabled": False}, "slides": {"dir": "/data"},
                            "training": {"baselines": ["slide_text"]}})
    with pytest.raises(ConfigError, match="training.slide_text.labels"):
        baseline_data_inputs(real)


def test_layout_and_workflow_inputs_of_a_baseline(tmp_path):
    cfg = demo_cfg(tmp_path)
    L, B = Layout(cfg), Layout(cfg, "slide_text")
    assert B.training_final == L.training_dir / "baselines" / "slide_text" / "final.pt"
    assert B.warm_start_dir.is_relative_to(B.training_dir) and L.training_default_csv == L.dataset_csv
    pairs = B.training_data_files()
    assert train_inputs(cfg, "slide_text") == {"default_csv": str(pairs["csv"]), "default_card": str(pairs["card"])}
    assert train_inputs(cfg) == {"default_csv": str(L.dataset_csv), "default_card": str(L.dataset_card)}
    name = cfg.training.baseline_encoder("slide_text")
    enc = {"kind": "open_clip", "arch": "pathgen-tiny-vit"}
    with_mil = validate_config({
        "results_dir": str(tmp_path / "results"), "training": {"baselines": ["slide_text"]},
        "encoders": {"pathgen-demo-clip": {**enc, "pretrained": str(L.training_final)},
                     name: {**enc, "pretrained": str(B.training_final)}},
        "evaluation": {"mil": {"tasks": {"t": {"labels": "l.csv", "classes": ["a", "b"]}},
                               "encoders": ["pathgen-demo-clip", name, "tiny-demo"]}}})
    assert model_feature_encoders(with_mil) == ["pathgen-demo-clip", name]  # not tiny-demo


def _tables(tmp_path: Path, baseline_better: bool) -> tuple[Path, Path]:
    lo, hi = (0.6, 0.4) if not baseline_better else (0.4, 0.6)
    zs = pd.DataFrame([{"benchmark": "demo", "model": m, "prompting": "single",
                        "balanced_accuracy": v, "balanced_accuracy_ci_low": v - 0.05,
                        "balanced_accuracy_ci_high": v + 0.05, "macro_auroc": v + 0.2,
                        "macro_auroc_ci_low": v + 0.1, "macro_auroc_ci_high": v + 0.3}
                       for m, v in (("clip", lo), ("clip-slide_text", hi), ("rand", 0.17))])
    mil = pd.DataFrame([{"task": "t", "encoder": e, "model": "abmil", "auroc_mean": v, "auroc_sd": 0.1}
                        for e, v in (("clip", lo), ("clip-slide_text", hi))])
    zs.to_csv(tmp_path / "table.csv", index=False)
    mil.to_csv(tmp_path / "mil_table.csv", index=False)
    return tmp_path / "table.csv", tmp_path / "mil_table.csv"


@pytest.mark.parametrize("baseline_better", [False, True])
def test_report_verdict_says_who_wins(tmp_path, baseline_better):
    cfg = {"training": {"register_as": "clip", "baselines": ["slide_text"]},
           "features": {"encoder": "rand"}}
    models = compared_models(cfg)
    assert models == ["clip", "clip-slide_text", "rand"]
    zs, mil = _tables(tmp_path, baseline_better)
    rows = zeroshot_rows(zs, models) + mil_rows(mil, models)
    assert [r.metric for r in rows] == ["zero-shot demo balanced accuracy (single)",
                                        "zero-shot demo macro auroc (single)", "MIL t abmil AUROC"]
    assert rows[0].values["rand"] == "0.170 [0.120, 0.220]"
    text = verdict(rows, "clip", "clip-slide_text")
    if baseline_better:
        assert text.startswith("The baseline clip-slide_text wins") and "3 of 3" in text
    else:
        assert text == "The caption-trained clip beats the baseline clip-slide_text on 3 of 3 metrics."
    assert compared_models({"training": {"baselines": []}}) == []
