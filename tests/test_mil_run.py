"""End-to-end MIL benchmark on a tiny synthetic feature set where class c1 carries a signal."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pathgen.mil.labels import read_labels
from pathgen.mil.results_table import write_table
from pathgen.mil.run import run_benchmark
from pathgen.mil.splits import generate_splits
from pathgen.mil.train import TrainParams
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features

CLASSES = ["c0", "c1"]
torch.set_num_threads(1)


def _setup(tmp_path):
    synthetic_cohort(16, seed=0).to_csv(tmp_path / "labels.csv", index=False)
    table = read_labels(tmp_path / "labels.csv", CLASSES)
    feats = write_synthetic_features(tmp_path / "features_synth", table, CLASSES, dim=16,
                                     n_patches=(10, 30), signal=3.0, fraction=0.2)
    return table, feats, generate_splits(table, 3, 0.25, seed=0)


def _params(epochs=10):
    return TrainParams(epochs=epochs, lr=1e-3, seed=0,
                       model_kwargs=dict(hidden_dim=32, attn_dim=16, transmil_heads=4))


def _bench(tmp_path, model, **kw):
    table, feats, splits = _setup(tmp_path)
    return run_benchmark(table, CLASSES, splits, feats, model, tmp_path / "out" / model, _params(),
                         task="synth", encoder="synth", **kw), table


def test_abmil_end_to_end_learns_and_writes_clam_outputs(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    s, table = _bench(tmp_path, "abmil", heatmap_slides=1)
    out = tmp_path / "out" / "abmil"
    assert s["mean"]["auroc"] > 0.8, s
    assert s["n_folds"] == 3 and len(s["folds"]) == 3
    preds = pd.concat(pd.read_csv(out / f"fold_{k}.csv") for k in range(3))
    assert list(preds.columns) == ["slide_id", "Y", "Y_hat", "p_0", "p_1"]
    assert sorted(preds.slide_id) == sorted(table.slide_id)           # every slide tested once
    assert np.allclose(preds[["p_0", "p_1"]].sum(axis=1), 1, atol=1e-5)
    assert (preds.Y_hat == preds[["p_0", "p_1"]].to_numpy().argmax(1)).all()
    csv = pd.read_csv(out / "metrics.csv")
    assert list(csv.fold) == ["0", "1", "2", "mean", "sd"]
    assert csv.auroc.iloc[3] == pytest.approx(s["mean"]["auroc"])
    fold0 = json.loads((out / "fold_0.json").read_text())
    assert fold0["best_epoch"] == max(range(10), key=lambda e: (
        fold0["history"][e]["val_auroc"], -fold0["history"][e]["val_loss"]))
    pngs = sorted((out / "heatmaps").rglob("*.png"))
    assert len(pngs) == 3 and Image.open(pngs[0]).size[0] > 10
    assert (out / "s_0_checkpoint.pt").exists()
    # rerun resumes: folds are reused, not retrained
    before = (out / "fold_1.csv").stat().st_mtime_ns
    caplog.clear()
    table2, feats, splits = _setup(tmp_path)
    s2 = run_benchmark(table2, CLASSES, splits, feats, "abmil", out, _params(), task="synth",
                       encoder="synth", heatmap_slides=1)
    assert caplog.text.count("reusing finished results") == 3
    assert (out / "fold_1.csv").stat().st_mtime_ns == before and s2["mean"] == s["mean"]
    # a changed hyper-parameter invalidates the folds
    caplog.clear()
    run_benchmark(table2, CLASSES, splits, feats, "abmil", out, _params(epochs=2), task="synth",
                  encoder="synth", heatmap_slides=0)
    assert "reusing" not in caplog.text
    df = write_table([out / "metrics.json"], tmp_path / "t.csv", tmp_path / "t.md")
    assert df.loc[0, "model"] == "abmil" and "± " in (tmp_path / "t.md").read_text()


def test_deterministic_with_seed(tmp_path):
    table, feats, splits = _setup(tmp_path)
    _ = [run_benchmark(table, CLASSES, splits[:1], feats, "acmil", tmp_path / f"o{i}", _params(3),
                          heatmap_slides=0) for i in range(2)]
    a, b = (pd.read_csv(tmp_path / f"o{i}" / "fold_0.csv") for i in range(2))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["acmil", "transmil"])
def test_other_models_learn(tmp_path, model):
    s, _ = _bench(tmp_path, model, heatmap_slides=0)
    assert s["mean"]["auroc"] > 0.8, s
