"""Label tables, splits, metrics and feature-folder loading for the MIL stage."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from pathgen.config import ConfigError
from pathgen.mil import metrics as M
from pathgen.mil.bags import BagStore, index_bags
from pathgen.mil.labels import read_labels
from pathgen.mil.splits import (check_splits, generate_splits, read_splits, save_splits,
                                write_clam_split)
from pathgen_testkit.feature_files import write_features_file
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features

CLASSES = ["c0", "c1"]


@pytest.fixture
def cohort(tmp_path):
    t = synthetic_cohort(20, 2, (1, 2), seed=1)
    t.to_csv(tmp_path / "labels.csv", index=False)
    return read_labels(tmp_path / "labels.csv", CLASSES)


# -- label tables -----------------------------------------------------------------------
def test_stamp_tables_match_clam(tmp_path, cohort):
    clin = cohort.drop_duplicates("case_id")[["case_id", "label"]].rename(
        columns={"case_id": "PATIENT", "label": "isMSIH"})
    clin = pd.concat([clin, pd.DataFrame({"PATIENT": ["case_no_slides"], "isMSIH": ["c1"]})])
    clin.to_csv(tmp_path / "clini.csv", index=False)
    pd.DataFrame({"PATIENT": cohort["case_id"], "FILENAME": cohort["slide_id"] + ".svs"}).to_csv(
        tmp_path / "slide.csv", index=False)
    stamp = read_labels(tmp_path / "clini.csv", CLASSES, target="isMSIH", slide_table=tmp_path / "slide.csv")
    a = stamp.sort_values("slide_id").reset_index(drop=True)
    b = cohort.sort_values("slide_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_label_errors_name_file(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("case_id,slide_id,label\na,s1,tumor\nb,s2,weird\nc,s3,\n")
    with pytest.raises(ConfigError, match=r"l\.csv.*'weird'.*label_map"):
        read_labels(p, ["normal", "tumor"])
    t = read_labels(p, ["normal", "tumor"], label_map={"weird": "normal"})  # empty label dropped
    assert list(t["slide_id"]) == ["s1", "s2"] and list(t["y"]) == [1, 0]
    (tmp_path / "bad.csv").write_text("slide,label\ns1,tumor\n")
    with pytest.raises(ConfigError, match="slide_id"):
        read_labels(tmp_path / "bad.csv", ["normal", "tumor"])


# -- splits -------------------------------------------------------------------------------
def test_generated_splits_keep_patients_together_and_balance(cohort):
    splits = generate_splits(cohort, folds=5, val_fraction=0.2, seed=0)
    case = dict(zip(cohort.slide_id, cohort.case_id))
    lab = dict(zip(cohort.slide_id, cohort.y))
    tests = []
    for s in splits:
        parts = {p: {case[x] for x in s[p]} for p in ("train", "val", "test")}
        assert not parts["train"] & parts["test"] and not parts["train"] & parts["val"]
        assert not parts["val"] & parts["test"]
        assert set(s["train"]) | set(s["val"]) | set(s["test"]) == set(cohort.slide_id)
        assert s["val"], "validation carved from train"
        pos = np.mean([lab[x] for x in s["test"]])
        assert 0.2 < pos < 0.8, "test folds stratified"
        tests += s["test"]
    assert sorted(tests) == sorted(cohort.slide_id)            # each slide tested exactly once
    assert splits == generate_splits(cohort, 5, 0.2, seed=0)  # seeded
    assert splits != generate_splits(cohort, 5, 0.2, seed=1)


def test_clam_split_files_round_trip(tmp_path, cohort):
    splits = generate_splits(cohort, 3, 0.25, seed=0)
    paths = save_splits(tmp_path / "sp", splits, cohort, CLASSES)
    assert [p.name for p in paths] == ["splits_0.csv", "splits_1.csv", "splits_2.csv"]
    raw = pd.read_csv(paths[0])
    assert list(raw.columns) == ["Unnamed: 0", "train", "val", "test"]  # CLAM keeps the index
    assert read_splits(tmp_path / "sp") == splits
    summary = json.loads((tmp_path / "sp" / "splits_summary.json").read_text())
    assert summary["n_folds"] == 3
    (tmp_path / "s.json").write_text(json.dumps({"folds": splits}))
    assert read_splits(tmp_path / "s.json") == splits


def test_bad_splits_are_errors(tmp_path, cohort):
    s = generate_splits(cohort, 3, 0.25, seed=0)[0]
    bad = {**s, "test": s["test"] + [s["train"][0]]}
    with pytest.raises(ConfigError, match="both train and test"):
        check_splits([bad], cohort, "x.csv")
    write_clam_split(tmp_path / "splits_0.csv", {**s, "test": ["nope"]})
    with pytest.raises(ConfigError, match="not in the labels table"):
        check_splits(read_splits(tmp_path / "splits_0.csv"), cohort, "splits_0.csv")
    with pytest.raises(ConfigError, match="folds need at least"):
        generate_splits(cohort.head(3), 5, 0.1, 0)


# -- metrics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_metrics_match_sklearn(n_classes):
    rng = np.random.default_rng(n_classes)
    for _ in range(5):
        y = rng.integers(0, n_classes, 40)
        logits = rng.normal(size=(40, n_classes)) + np.eye(n_classes)[y] * rng.uniform(0, 2)
        logits[:5] = np.round(logits[:5])  # some ties
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        got = M.classification_metrics(y, p)
        yh = p.argmax(1)
        assert got["accuracy"] == pytest.approx(accuracy_score(y, yh))
        assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, yh))
        assert got["f1"] == pytest.approx(f1_score(y, yh, average="macro"))
        ref = roc_auc_score(y, p[:, 1]) if n_classes == 2 else roc_auc_score(y, p, multi_class="ovr")
        assert got["auroc"] == pytest.approx(ref)


def test_metrics_degenerate():
    assert math.isnan(M.macro_auroc(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]])))
    assert M.mean_sd([0.5, float("nan"), 0.7]) == pytest.approx((0.6, np.std([0.5, 0.7], ddof=1)))


# -- feature folders ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["pathgen", "clam_h5", "clam_pt", "stamp"])
def test_feature_layouts_load_the_same_bags(tmp_path, cohort, layout):
    ref = write_synthetic_features(tmp_path / "ref", cohort, CLASSES, dim=8, seed=3)
    other = write_synthetic_features(tmp_path / layout, cohort, CLASSES, dim=8, seed=3, layout=layout,
                                     row_chunks=layout == "clam_h5")
    a = BagStore(index_bags(ref, list(cohort.slide_id)), 100)
    b = BagStore(index_bags(other, list(cohort.slide_id)), 100)
    sid = cohort.slide_id[0]
    assert np.array_equal(a[sid].features.numpy(), b[sid].features.numpy())
    assert b.index.dim == 8
    if layout == "clam_h5":
        assert b[sid].patch_size_level0 == 256 and b[sid].coords.shape == (len(b[sid].features), 2)
    if layout == "stamp":
        assert b[sid].coords is None  # µm coords are not level-0 px


def test_trident_folder_and_reread_mode(tmp_path, cohort):
    d = write_synthetic_features(tmp_path / "features_conch_v15", cohort, CLASSES, dim=8, dtype="float16")
    idx = index_bags(d, list(cohort.slide_id))
    mem, disk = BagStore(idx, 100), BagStore(idx, 0)
    assert mem.in_memory and not disk.in_memory
    sid = cohort.slide_id[1]
    assert mem[sid].features.dtype == disk[sid].features.dtype == __import__("torch").float32
    assert np.array_equal(mem[sid].features.numpy(), disk[sid].features.numpy())


def test_zero_patch_and_missing_slides_skipped(tmp_path, cohort, caplog):
    d = write_synthetic_features(tmp_path / "f", cohort, CLASSES, dim=8)
    empty, gone = cohort.slide_id[0], cohort.slide_id[1]
    write_features_file(d / f"{empty}.h5", np.zeros((0, 8)), np.zeros((0, 2)))  # N = 0 is a valid file
    (d / f"{gone}.h5").unlink()
    idx = index_bags(d, list(cohort.slide_id))
    assert idx.skipped == {empty: "0 patches", gone: "no feature file"}
    assert "skipped" in caplog.text
    write_features_file(d / f"{cohort.slide_id[2]}.h5", np.zeros((3, 5)), np.zeros((3, 2)))  # 5 wide, not 8
    with pytest.raises(ConfigError, match="feature width"):
        index_bags(d, list(cohort.slide_id))
    with pytest.raises(ConfigError, match="does not exist"):
        index_bags(tmp_path / "nope", ["a"])
