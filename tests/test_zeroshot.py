"""Zero-shot: loaders on tiny data in the real layouts, metrics vs scikit-learn, bootstrap,
prompt ensembling, and one end-to-end run with a tiny random encoder."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score,
                             top_k_accuracy_score)

from pathgen.config import ConfigError, validate_config
from pathgen.config.evaluation import ZeroShotBenchmark
from pathgen.zeroshot.benchmarks import resolve_benchmark
from pathgen.zeroshot.loaders import load_samples
from pathgen.zeroshot.metrics import bootstrap_ci, point_metrics, top_k_accuracy
from pathgen.zeroshot.prompts import class_embeddings, ensemble_prompts


def png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)


def bench(name, root, **kw):
    return resolve_benchmark(name, ZeroShotBenchmark(root=root, **kw))


# -- loaders -------------------------------------------------------------------------------
def test_imagefolder_with_preset(tmp_path):
    for code, n in (("colon_n", 2), ("colon_aca", 3)):
        for i in range(n):
            png(tmp_path / code / f"{i}.jpeg")
    bm = bench("lc", tmp_path, preset="LC25000_COLON")
    s = load_samples(bm)
    assert bm.classes == ["colon_n", "colon_aca"]
    assert bm.single_prompts["colon_aca"] == "An image of colon adenocarcinoma"
    assert list(s.labels) == [0, 0, 1, 1, 1] and s.image(0).size == (16, 16)
    (tmp_path / "colon_n" / "0.jpeg").unlink()
    (tmp_path / "colon_n" / "1.jpeg").unlink()
    (tmp_path / "colon_n").rmdir()
    with pytest.raises(FileNotFoundError, match="colon_n"):
        load_samples(bm)


def test_imagefolder_demo_style_classes_json_and_template(tmp_path):
    for code in ("tumor", "stroma"):
        png(tmp_path / code / "a.png")
    (tmp_path / "classes.json").write_text(json.dumps({"tumor": "tumor epithelium",
                                                       "stroma": "stroma"}))
    (tmp_path / "template").write_text("an H&E patch of {}.\n")
    bm = bench("demo", tmp_path)
    assert bm.layout == "imagefolder" and bm.classes == ["tumor", "stroma"]
    assert bm.single_prompts["tumor"] == "an H&E patch of tumor epithelium."


def test_csv_layout_mhist_split_and_label_map(tmp_path):
    for i in range(4):
        png(tmp_path / "images" / f"img{i}.png")
    pd.DataFrame({"Image Name": [f"img{i}.png" for i in range(4)],
                  "Majority Vote Label": ["HP", "SSA", "SSA", "HP"],
                  "Partition": ["train", "test", "test", "test"]}).to_csv(
        tmp_path / "annotations.csv", index=False)
    s = load_samples(bench("mhist", tmp_path, preset="MHIST"))
    assert list(s.labels) == [1, 1, 0] and s.ids[0] == "images/img1.png"
    # OSTEO: raw labels mapped through label_map; unknown labels are a clear error.
    for i in range(3):
        png(tmp_path / "osteo" / f"t{i}.jpg")
    pd.DataFrame({"image.name": ["t0", "t1", "t2"],
                  "classification": ["Non-Tumor", "viable: non-viable", "Non-Viable-Tumor"]}).to_csv(
        tmp_path / "osteo" / "ML_Features_1144.csv", index=False)
    bm = bench("osteo", tmp_path / "osteo", preset="OSTEO")
    s = load_samples(bm)
    assert [bm.classes[k] for k in s.labels] == ["Non-tumor", "Viable tumor", "Necrotic tumor"]
    pd.DataFrame({"image.name": ["t0"], "classification": ["Weird"]}).to_csv(
        tmp_path / "osteo" / "ML_Features_1144.csv", index=False)
    with pytest.raises(ConfigError, match="Weird"):
        load_samples(bm)


def test_pcam_h5(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (5, 96, 96, 3), dtype=np.uint8)
    y = np.array([0, 1, 1, 0, 1], np.uint8).reshape(5, 1, 1, 1)
    with h5py.File(tmp_path / "camelyonpatch_level_2_split_test_x.h5", "w") as f:
        f["x"] = x
    with h5py.File(tmp_path / "camelyonpatch_level_2_split_test_y.h5", "w") as f:
        f["y"] = y
    s = load_samples(bench("pcam", tmp_path, preset="PCAM"))
    assert list(s.labels) == [0, 1, 1, 0, 1]
    assert np.array_equal(np.asarray(s.image(3)), x[3])
    (tmp_path / "camelyonpatch_level_2_split_test_y.h5").unlink()
    with pytest.raises(FileNotFoundError, match="_y.h5"):
        load_samples(bench("pcam", tmp_path, preset="PCAM"))


def test_sicap_xlsx(tmp_path):
    names = [f"p{i}.jpg" for i in range(5)]
    for n in names:
        png(tmp_path / "images" / n)
    (tmp_path / "partition" / "Test").mkdir(parents=True)
    # rows: G3, NC, G4C (dropped), G4+G5 (multi-label, dropped), G5
    pd.DataFrame({"image_name": names, "NC": [0, 1, 0, 0, 0], "G3": [1, 0, 0, 0, 0],
                  "G4": [0, 0, 1, 1, 0], "G5": [0, 0, 0, 1, 1], "G4C": [0, 0, 1, 0, 0]}).to_excel(
        tmp_path / "partition" / "Test" / "Test.xlsx", index=False)
    bm = bench("sicap", tmp_path, preset="SICAPv2")
    s = load_samples(bm)
    assert s.ids == ["p0.jpg", "p1.jpg", "p4.jpg"]
    assert [bm.classes[k] for k in s.labels] == ["G3", "NC", "G5"]
    (tmp_path / "images" / "p4.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="p4.jpg"):
        load_samples(bm)


def test_wsss4luad_names(tmp_path):
    d = tmp_path / "1.training"
    png(d / "436219-7159-48057-[1, 0, 0].png")
    png(d / "436219-7159-48058-[0, 1, 1].png")
    png(d / "436219-7159-48059-[1, 1, 0].png")
    bm = bench("w", tmp_path, preset="WSSS4LUAD")
    s = load_samples(bm)
    assert [bm.classes[k] for k in s.labels] == ["tumor", "normal", "tumor"]
    assert bm.single_prompts["tumor"] == "An H&E image of tumor tissue."
    png(d / "no-flags.png")
    with pytest.raises(ConfigError, match="flags"):
        load_samples(bm)


def test_missing_root_and_unknown_preset(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bench("x", tmp_path / "nope", preset="BACH")
    with pytest.raises(ConfigError, match="BACH"):
        bench("x", tmp_path, preset="BACHH")


# -- metrics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes,seed", [(2, 0), (3, 1), (5, 2), (9, 3)])
def test_metrics_match_sklearn(n_classes, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, 200)
    if n_classes > 2:
        y[y == n_classes - 1] = 0  # a class absent from y, as in small test sets
    probs = rng.dirichlet(np.ones(n_classes), 200)
    probs[np.arange(200), y] += rng.random(200) * 0.5  # informative
    probs /= probs.sum(axis=1, keepdims=True)
    pred = probs.argmax(1)
    m = point_metrics(y, probs)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted", zero_division=0))
    present = np.unique(y)
    if n_classes == 2:
        ref = roc_auc_score(y, probs[:, 1])
    else:
        ref = np.mean([roc_auc_score(y == c, probs[:, c]) for c in present])
    assert m["macro_auroc"] == pytest.approx(ref)
    if n_classes > 2:
        k = min(5, n_classes - 1)
        assert top_k_accuracy(y, probs, k) == pytest.approx(
            top_k_accuracy_score(y, probs, k=k, labels=np.arange(n_classes)))


def test_bootstrap_ci_contains_point_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    probs = rng.dirichlet(np.ones(3), 150)
    probs[np.arange(150), y] += 0.3
    m = point_metrics(y, probs)
    ci = bootstrap_ci(y, probs, n=300, seed=7)
    for k in ("accuracy", "balanced_accuracy", "weighted_f1", "macro_auroc"):
        lo, hi = ci[k]
        assert lo <= m[k] <= hi and lo < hi
    assert ci == bootstrap_ci(y, probs, n=300, seed=7)
    assert ci != bootstrap_ci(y, probs, n=300, seed=8)


# -- prompts -------------------------------------------------------------------------------
def test_ensemble_is_mean_of_normalised_then_renormalised(tmp_path):
    for code in ("a", "b"):
        png(tmp_path / code / "x.png")
    pf = tmp_path / "prompts.json"
    pf.write_text(json.dumps({"0": {"classnames": {"a": ["alpha", "first"]},
                                    "templates": ["CLASSNAME.", "an image of CLASSNAME."]}}))
    bm = bench("t", tmp_path, classes={"a": "class a", "b": "class b"}, prompt_file=str(pf))
    prompts = ensemble_prompts(bm)
    assert prompts["a"] == ["alpha.", "an image of alpha.", "first.", "an image of first."]
    assert prompts["b"] == ["class b.", "an image of class b."]  # no synonyms: class text
    gen = torch.Generator().manual_seed(0)
    table = {t: torch.randn(8, generator=gen) * (i + 1) for i, t in
             enumerate(prompts["a"] + prompts["b"])}
    emb = class_embeddings(prompts, lambda ts: torch.stack([table[t] for t in ts]), ["a", "b"])
    for row, code in zip(emb, ("a", "b")):
        expected = F.normalize(torch.stack([F.normalize(table[t], dim=0) for t in prompts[code]]
                                           ).mean(0), dim=0)
        assert torch.allclose(row, expected, atol=1e-6)
        assert torch.linalg.norm(row) == pytest.approx(1.0, abs=1e-6)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"0": {"classnames": {"zzz": ["x"]}, "templates": ["CLASSNAME"]}}))
    with pytest.raises(ConfigError, match="zzz"):
        ensemble_prompts(bench("t", tmp_path, classes={"a": "a", "b": "b"}, prompt_file=str(bad)))


def test_shipped_prompt_files_cover_presets():
    from pathgen.zeroshot.benchmarks import PROMPT_DIR, presets
    from pathgen.zeroshot.prompts import read_prompt_file

    for name, p in presets().items():
        if "prompt_file" in p:
            classnames, templates = read_prompt_file(PROMPT_DIR / p["prompt_file"])
            assert set(classnames) == {str(c) for c in p["classes"]}, name
            assert templates


# -- end to end ------------------------------------------------------------------------------
def test_evaluate_and_table_with_tiny_random_encoder(tmp_path):
    from pathgen.zeroshot.report import write_table
    from pathgen.zeroshot.workflow import evaluate_benchmark

    torch.set_num_threads(1)
    root = tmp_path / "bench"
    for k, code in enumerate(("tumor", "normal")):
        for i in range(3):
            png(root / code / f"{i}.png", value=60 + 120 * k + i)
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "evaluation": {"zeroshot": {
        "benchmarks": {"demo": {"root": str(root)}}, "bootstrap": 50, "batch_size": 4}}})
    results = evaluate_benchmark(cfg, "demo", "tiny-demo")
    assert set(results) == {"single", "ensemble"}
    out = tmp_path / "results/eval/zeroshot/demo/tiny-demo"
    r = json.loads((out / "results_single.json").read_text())
    assert {"dataset", "model", "pretrained", "task", "metrics", "language"} <= set(r)
    assert r["task"] == "zeroshot_classification" and r["n_images"] == 6
    assert {"acc1", "acc5", "mean_per_class_recall", "balanced_accuracy", "weighted_f1",
            "macro_auroc"} <= set(r["metrics"])
    assert np.asarray(r["confusion_matrix"]).sum() == 6
    preds = pd.read_csv(out / "predictions_single.csv")
    assert len(preds) == 6 and np.allclose(preds[["p_tumor", "p_normal"]].sum(axis=1), 1, atol=1e-4)
    assert (out / "confusion_single.png").stat().st_size > 0
    rows = write_table(sorted(out.glob("results_*.json")), tmp_path / "t.csv", tmp_path / "t.md")
    assert len(rows) == 2 and "| demo | tiny-demo |" in (tmp_path / "t.md").read_text()
    # `pathgen zeroshot-table` finds the same results under results_dir and writes table.csv/.md
    # there, or <stem>.csv/.md for --out <stem>
    from pathgen.cli import main

    results_dir = ["--set", f"results_dir={tmp_path / 'results'}"]
    assert main(["zeroshot-table", *results_dir]) == 0
    assert len(pd.read_csv(tmp_path / "results/eval/zeroshot/table.csv")) == 2
    assert (tmp_path / "results/eval/zeroshot/table.md").read_text() == (tmp_path / "t.md").read_text()
    assert main(["zeroshot-table", *results_dir, "--out", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine.md").read_text() == (tmp_path / "t.md").read_text()


def test_models_default_and_workflow_inputs(tmp_path):
    from pathgen.zeroshot.workflow import model_names, model_spec
    from pathgen.zeroshot.workflow import zeroshot_inputs

    cfg = validate_config({"results_dir": str(tmp_path / "r"), "demo": {"enabled": False},
                           "slides": {"dir": str(tmp_path)}, "features": {"encoder": "tiny-demo"},
                           "training": {"register_as": "pathgen-demo-clip"}, "evaluation": {"zeroshot": {
        "benchmarks": {"demo": {"root": str(tmp_path / "r" / "demo" / "zeroshot")},
                       "ext": {"root": "/data/crc", "preset": "CRC100K"}}}}})
    assert model_names(cfg) == ["pathgen-demo-clip", "tiny-demo"]
    spec = model_spec(cfg, "pathgen-demo-clip")  # the training output, even if not declared
    assert spec.pretrained == str(tmp_path / "r" / "training" / "final.pt")
    inputs = zeroshot_inputs(cfg, "demo", "pathgen-demo-clip")
    assert inputs["data"] == [str(tmp_path / "r" / "demo" / "zeroshot" / "classes.json")]
    assert inputs["weights"] == [spec.pretrained]
    ext = zeroshot_inputs(cfg, "ext", "tiny-demo")
    assert ext == {"data": ["/data/crc"], "weights": []}


def test_one_auroc_for_zeroshot_and_mil():
    from pathgen.metrics import macro_auroc
    from pathgen.mil import metrics as mil_metrics
    from pathgen.zeroshot import metrics as zs_metrics

    assert zs_metrics.macro_auroc is mil_metrics.macro_auroc is macro_auroc
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(4), 60)
    y = rng.integers(0, 3, 60)  # class 3 absent: left out of the macro average
    ref = roc_auc_score(np.eye(4)[y][:, :3], probs[:, :3], average="macro")
    assert macro_auroc(y, probs) == pytest.approx(ref)
    assert np.isnan(macro_auroc(np.zeros(5, int), probs[:5]))  # one class only
    binary = np.array([[0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    assert macro_auroc(np.array([0, 1, 1]), binary) == pytest.approx(roc_auc_score([0, 1, 1], binary[:, 1]))
    bad = probs[:6].copy()
    bad[0, 0] = np.nan
    assert np.isnan(macro_auroc(np.array([0, 1, 2, 0, 1, 2]), bad))
