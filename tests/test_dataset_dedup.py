"""Dataset-level near-duplicate removal across slides (dataset.dedup_cosine) and the
per-agent ablation (dataset.caption_stage)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pathgen.config.dataset import DatasetConfig
from pathgen.dataset import build_dataset
from pathgen.dataset import dedup as dd
from pathgen.dataset.records import DatasetInputError
from pathgen_testkit.workspace import fake_slide_workspace, make_touched_state, parse_jobs
from pathgen_testkit.caption_files import make_slide
from pathgen_testkit.feature_files import write_features_file

DIM = 64


def write_features(path, rows: dict[tuple[int, int], np.ndarray], rng):
    """A features HDF5 (pathgen's own writer), with extra uncaptioned patches, rows reversed."""
    coords = list(rows) + [(5000 + 256 * i, 0) for i in range(4)]
    feats = list(rows.values()) + [rng.normal(size=DIM) for _ in range(4)]
    write_features_file(path, np.asarray(feats, np.float32)[::-1], np.asarray(coords, np.int64)[::-1],
                        patch_size=16, patch_size_level0=16)


@pytest.fixture
def planted(tmp_path):
    """S1, S2, S3 with three planted near-duplicate pairs across slides:
    S2#1 ~ S1#0, S3#0 ~ S1#0 (a group of three) and S3#1 ~ S2#2."""
    rng = np.random.default_rng(0)
    fd = tmp_path / "features_x"
    files = [make_slide(fd, "S1", 3, 0), make_slide(fd, "S2", 3, 0), make_slide(fd, "S3", 2, 0)]
    vec = {(s, i): rng.normal(size=DIM) for s, n in (("S1", 3), ("S2", 3), ("S3", 2)) for i in range(n)}
    for dup, orig in (((("S2", 1)), ("S1", 0)), (("S3", 0), ("S1", 0)), (("S3", 1), ("S2", 2))):
        vec[dup] = vec[orig] + 0.01 * rng.normal(size=DIM)  # cosine ~ 0.9999
    for s in ("S1", "S2", "S3"):
        write_features(fd / f"{s}.h5", {(256 * i, 128): v for (t, i), v in vec.items() if t == s}, rng)
    return fd, files


def test_cross_slide_dedup_removes_planted_and_keeps_the_first(tmp_path, planted):
    _, files = planted
    out = tmp_path / "d"
    card = build_dataset(files, out, DatasetConfig(dedup_cosine=0.99))
    d = card["dedup"]
    assert d["n_before"] == 8 and d["n_removed"] == 3 and d["n_after"] == card["n_pairs"] == 5
    assert {(r["key"], r["duplicate_of"]) for r in d["removed"]} == {
        ("S2_256_128", "S1_0_128"), ("S3_0_128", "S1_0_128"), ("S3_256_128", "S2_512_128")}
    assert d["n_cross_slide"] == 3 and d["removed_per_slide"] == {"S2": 1, "S3": 2}
    assert "IndexFlatIP" in d["index"]
    # the outputs hold only the kept samples; the card (JSON + Markdown) records the removal
    csv = pd.read_csv(out / "open_clip.csv", sep="\t")
    assert len(csv) == 5 and len(list((out / "images").rglob("*.jpg"))) == 5
    assert len(json.loads((out / "pathgen.json").read_text())) == 5
    assert json.loads((out / "dataset_card.json").read_text())["dedup"]["n_removed"] == 3
    md = (out / "dataset_card.md").read_text()
    assert "removed 3 of 8 samples (3 duplicating another slide)" in md and "| S3 | 2 |" in md
    # deterministic: the same input gives the same choice
    again = build_dataset(files, tmp_path / "d2", DatasetConfig(dedup_cosine=0.99))
    assert again["dedup"]["removed"] == d["removed"]


def test_dedup_off_by_default_and_threshold_matters(tmp_path, planted):
    _, files = planted
    card = build_dataset(files, tmp_path / "d", DatasetConfig())
    assert card["dedup"] == {"enabled": False} and card["n_pairs"] == 8
    assert "Off (`dataset.dedup_cosine: null`)" in (tmp_path / "d" / "dataset_card.md").read_text()
    strict = build_dataset(files, tmp_path / "e", DatasetConfig(dedup_cosine=1.0))
    assert strict["dedup"]["n_removed"] == 0  # planted pairs are close, not identical


def test_cli_dedup_and_caption_stage(tmp_path, planted, capsys, monkeypatch):
    from pathgen.cli import main

    fd, files = planted
    other = tmp_path / "feats"
    other.mkdir()
    for f in fd.glob("*.h5"):
        f.rename(other / f.name)  # --features-dir, not the default beside the captions
    monkeypatch.chdir(tmp_path)
    rc = main(["build-dataset", *map(str, files), "--out", str(tmp_path / "d"), "--dedup-cosine", "0.99",
               "--features-dir", str(other), "--caption-stage", "revise"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["dedup"]["n_removed"] == 3 and out["n_pairs"] == 5
    assert out["caption_stage"]["stage"] == "revise"


def test_dedup_names_a_missing_features_file(tmp_path, planted):
    fd, files = planted
    (fd / "S2.h5").unlink()
    with pytest.raises(DatasetInputError, match=r"features HDF5 of slide 'S2'.*dedup_cosine: null"):
        build_dataset(files, tmp_path / "d", DatasetConfig(dedup_cosine=0.99))


def test_ivf_search_finds_the_exact_groups():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(50, 32))
    x = centers[rng.integers(0, 50, 4000)] + 0.5 * rng.normal(size=(4000, 32))
    src = rng.choice(4000, 60, replace=False)
    x[rng.choice(np.setdiff1d(np.arange(4000), src), 60, replace=False)] = x[src] + 1e-3
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    exact = dd.duplicate_of(dd.neighbours(x, 8, exact_max=10**6), 0.99)[0]
    ivf_nb = dd.neighbours(x, 8, exact_max=0, nprobe=16)
    assert "IVF" in ivf_nb.index
    ivf = dd.duplicate_of(ivf_nb, 0.99)[0]
    assert (exact >= 0).sum() == 60 and np.array_equal(exact, ivf)
    assert all(exact[i] < i for i in np.flatnonzero(exact >= 0))  # the earlier one stays


@pytest.mark.parametrize("stage,expect", [("summarize", "caption 0 of S1"), ("revise", "revise 0"),
                                          ("describe", "describe 0 <b>")])
def test_caption_stage_picks_that_agents_text(tmp_path, planted, stage, expect):
    _, files = planted
    out = tmp_path / stage
    card = build_dataset(files, out, DatasetConfig(caption_stage=stage))
    rows = json.loads((out / "pathgen.json").read_text())
    first = next(r for r in rows if r["wsi_id"] == "S1" and r["position"] == ["0", "128"])
    assert first["caption"].startswith(expect)
    csv = pd.read_csv(out / "open_clip.csv", sep="\t")
    assert csv["title"].str.startswith(expect.split(" ")[0]).all()
    assert card["caption_stage"] == {"stage": stage, "field": {"summarize": "caption"}.get(stage, stage),
                                     "missing_text": 0}
    assert f"Agent: `{stage}`" in (out / "dataset_card.md").read_text()


def test_caption_stage_without_that_text_is_counted(tmp_path):
    path = make_slide(tmp_path / "features_x", "S1", 3, 0)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    recs[1]["revise"] = None  # e.g. captioning.skip_revise
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    card = build_dataset([path], tmp_path / "d", DatasetConfig(caption_stage="revise"))
    assert card["n_pairs"] == 2 and card["caption_stage"]["missing_text"] == 1


def test_caption_stage_and_dedup_rerun_build_dataset_only(tmp_path):
    ws = fake_slide_workspace(tmp_path, 2, evaluation={"mil": {"enabled": False}})
    make_touched_state(ws)
    for key, value in (("caption_stage", "describe"), ("dedup_cosine", 0.97)):
        ws.config.setdefault("dataset", {})[key] = value
        ws.write_config()
        rules = {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
        assert "build_dataset" in rules and not rules & {"caption", "select_patches"}, (key, rules)
        ws.config["dataset"].pop(key)
