"""SKINCANCER preset scores the Test split of tiles-v2.csv only.

Fixture follows the heiDATA release of Kriegsmann et al. (doi:10.11588/data/7QCR8S): the
archive's ``data/`` folder holds ``tiles-v2.csv`` with columns ``file`` (``data/tiles/<class>/
<tile>.jpg``, relative to the folder the archive was unpacked in), ``class`` (the raw class
code) and ``set`` (``Train`` / ``Validation`` / ``Test``), next to ``tiles/<class>/``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pathgen.config import ConfigError
from pathgen.config.evaluation import ZeroShotBenchmark
from pathgen.zeroshot.benchmarks import resolve_benchmark
from pathgen.zeroshot.loaders import load_samples

ROWS = [  # (class, set)
    ("nontumor_skin_dermis_dermis", "Train"), ("nontumor_skin_dermis_dermis", "Test"),
    ("tumor_skin_melanoma_melanoma", "Validation"), ("tumor_skin_melanoma_melanoma", "Test"),
    ("tumor_skin_epithelial_bcc", "Test"), ("nontumor_skin_vessel_vessel", "Train"),
]


def _release(tmp_path, rows=ROWS):
    data = tmp_path / "skin" / "data"
    files = []
    for i, (cls, _) in enumerate(rows):
        rel = f"data/tiles/{cls}/{cls}_ws_{i}_1.jpg"
        (tmp_path / "skin" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(tmp_path / "skin" / rel)
        files.append(rel)
    pd.DataFrame({"uuid": range(len(rows)), "file": files, "class": [r[0] for r in rows],
                  "set": [r[1] for r in rows]}).to_csv(data / "tiles-v2.csv", index=False)
    return data


def test_skincancer_preset_scores_test_split_only(tmp_path):
    data = _release(tmp_path)
    bm = resolve_benchmark("skin", ZeroShotBenchmark(root=data, preset="SKINCANCER"))
    s = load_samples(bm)
    assert len(bm.classes) == 16
    assert [bm.classes[k] for k in s.labels] == ["nontumor_skin_dermis_dermis",
                                                 "tumor_skin_melanoma_melanoma",
                                                 "tumor_skin_epithelial_bcc"]
    assert s.ids == [f"tiles/{c}/{c}_ws_{i}_1.jpg" for i, (c, st) in enumerate(ROWS) if st == "Test"]
    assert s.image(0).size == (8, 8)
    # another split on request
    everything = resolve_benchmark("skin", ZeroShotBenchmark(root=data, preset="SKINCANCER",
                                                             split_value="Train"))
    assert len(load_samples(everything)) == 2


def test_skincancer_without_test_rows_is_a_clear_error(tmp_path):
    data = _release(tmp_path, [r for r in ROWS if r[1] != "Test"])
    bm = resolve_benchmark("skin", ZeroShotBenchmark(root=data, preset="SKINCANCER"))
    with pytest.raises(ConfigError, match=r"tiles-v2.csv: no row has set == 'Test'"):
        load_samples(bm)
