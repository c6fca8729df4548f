"""MIL file names come from pathgen.mil.files and stay CLAM's (fold files, split files, feature folders)."""

from __future__ import annotations

import pandas as pd

from pathgen.mil.bags import find_feature_file
from pathgen.mil.files import mil_fold_files, mil_heatmap, mil_run_files, mil_split_files
from pathgen.mil.splits import read_splits, save_splits
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features


def test_fold_and_run_file_names_are_clams(tmp_path):
    f = mil_fold_files(tmp_path, 3)
    assert {k: p.relative_to(tmp_path).as_posix() for k, p in f.items()} == {
        "json": "fold_3.json", "csv": "fold_3.csv", "checkpoint": "s_3_checkpoint.pt",
        "heatmaps": "heatmaps/fold_3"}
    assert mil_heatmap(f["heatmaps"], "s1").name == "s1.png"
    assert [p.name for p in mil_run_files(tmp_path).values()] == ["metrics.json", "metrics.csv"]


def test_split_files_by_fold_index_not_name_order(tmp_path):
    for name in ("splits_10.csv", "splits_2.csv", "splits_x.csv", "splits_.csv", "old_splits_1.csv"):
        (tmp_path / name).write_text("")
    assert list(mil_split_files(tmp_path)) == [2, 10]


def test_save_splits_drops_folds_of_a_larger_earlier_k(tmp_path):
    t = synthetic_cohort(12, seed=1)
    folds = [{"train": list(t.slide_id[2:]), "val": [t.slide_id[0]], "test": [t.slide_id[1]]}] * 5
    save_splits(tmp_path, folds, t, ["c0", "c1"])
    save_splits(tmp_path, folds[:3], t, ["c0", "c1"])
    assert sorted(p.name for p in tmp_path.glob("splits_*.csv")) == [f"splits_{k}.csv" for k in range(3)]
    assert len(read_splits(tmp_path)) == 3
    assert (tmp_path / "splits_summary.json").is_file()


def test_feature_lookup_follows_each_layout(tmp_path):
    t = pd.DataFrame({"case_id": ["c"], "slide_id": ["s1"], "label": ["c0"]})
    expect = {"pathgen": "s1.h5", "clam_h5": "h5_files/s1.h5", "clam_pt": "pt_files/s1.pt"}
    for layout, rel in expect.items():
        d = write_synthetic_features(tmp_path / layout, t, ["c0"], dim=4, n_patches=3, layout=layout)
        assert find_feature_file(d, "s1") == d / rel
        assert find_feature_file(d, "s2") is None
