"""MIL model selection: `select_by` auroc vs the paper's validation F1 + AUROC."""

import json
import math

import pytest
import torch
from pydantic import ValidationError

from pathgen.config.evaluation import MilConfig
from pathgen.mil.labels import read_labels
from pathgen.mil.results_table import build_table
from pathgen.mil.run import run_benchmark
from pathgen.mil.splits import generate_splits
from pathgen.mil.train import TrainParams, pick_epoch, selection_key
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features

torch.set_num_threads(1)


def _epoch(e, auroc, f1, loss):
    return {"epoch": e, "train_loss": 0.5, "val_accuracy": 0.5, "val_balanced_accuracy": 0.5,
            "val_auroc": auroc, "val_f1": f1, "val_loss": loss}


# epoch 1 has the best AUROC; epoch 2 the best F1 + AUROC (0.85 + 0.60 = 1.45 > 0.90 + 0.40).
HISTORY = [_epoch(0, 0.70, 0.50, 0.60), _epoch(1, 0.90, 0.40, 0.50), _epoch(2, 0.85, 0.60, 0.55),
           _epoch(3, 0.80, 0.55, 0.40)]


def test_criteria_pick_different_epochs():
    assert pick_epoch(HISTORY, "auroc") == 1
    assert pick_epoch(HISTORY, "f1_auc") == 2


def test_ties_go_to_lower_loss_then_earlier_epoch():
    tie = [_epoch(0, 0.75, 0.5, 0.6), _epoch(1, 0.5, 0.75, 0.25), _epoch(2, 0.25, 1.0, 0.25)]
    assert pick_epoch(tie, "f1_auc") == 1            # all 1.25: loss 0.25 twice -> earlier
    assert pick_epoch(tie, "auroc") == 0


def test_undefined_auroc_counts_as_worst():
    hist = [_epoch(0, math.nan, 0.9, 0.1), _epoch(1, 0.55, 0.1, 0.9)]
    assert pick_epoch(hist, "f1_auc") == 1 and pick_epoch(hist, "auroc") == 1
    assert selection_key({"auroc": math.nan, "f1": 0.5, "loss": 0.2}, "f1_auc")[0] == -math.inf
    with pytest.raises(ValueError, match="unknown MIL selection criterion 'f1'"):
        selection_key({"auroc": 0.5, "f1": 0.5, "loss": 0.2}, "f1")


def test_config_setting():
    assert MilConfig().select_by == "auroc"
    assert TrainParams.from_config(MilConfig(select_by="f1_auc")).select_by == "f1_auc"
    with pytest.raises(ValidationError, match="select_by"):
        MilConfig(select_by="accuracy")


def test_training_selects_and_records_the_criterion(tmp_path):
    synthetic_cohort(16, seed=0).to_csv(tmp_path / "labels.csv", index=False)
    classes = ["c0", "c1"]
    table = read_labels(tmp_path / "labels.csv", classes)
    feats = write_synthetic_features(tmp_path / "f", table, classes, dim=8, n_patches=(5, 15),
                                     signal=1.0, fraction=0.2)
    splits = generate_splits(table, 3, 0.3, seed=0)[:1]
    params = TrainParams(epochs=6, lr=1e-3, seed=0, select_by="f1_auc",
                         model_kwargs=dict(hidden_dim=16, attn_dim=8))
    s = run_benchmark(table, classes, splits, feats, "abmil", tmp_path / "o", params, heatmap_slides=0)
    fold = json.loads((tmp_path / "o" / "fold_0.json").read_text())
    assert fold["select_by"] == "f1_auc" and "F1 + AUROC" in fold["selection"]
    assert fold["best_epoch"] == pick_epoch(fold["history"], "f1_auc")
    assert s["select_by"] == "f1_auc" and s["params"]["select_by"] == "f1_auc"
    assert build_table([tmp_path / "o" / "metrics.json"]).loc[0, "select_by"] == "f1_auc"
