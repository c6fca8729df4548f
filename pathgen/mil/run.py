"""One benchmark run: a task's splits x one encoder's features x one model -> result files.

Per fold (under `out_dir`): `fold_<k>.csv` (CLAM predictions `slide_id,Y,Y_hat,p_0..p_C`),
`fold_<k>.json` (test/val metrics, best epoch, training history), `s_<k>_checkpoint.pt`
(CLAM's name for the selected weights) and `heatmaps/fold_<k>/<slide>.png`. Then
`metrics.json` / `metrics.csv` with each fold and mean ± sd. A fold whose files exist with
the same fingerprint (model, hyper-parameters, split, labels) is reused, so reruns resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..atomic import atomic_path, write_json
from .bags import BagStore, index_bags
from .files import mil_fold_files, mil_heatmap, mil_run_files
from .heatmaps import draw_heatmap
from .metrics import METRIC_NAMES, mean_sd
from .splits import read_splits
from .train import TrainParams, predict, train_fold

log = logging.getLogger(__name__)


def _fingerprint(model: str, params: TrainParams, split: dict, labels: dict[str, int],
                 classes: list[str], dim: int) -> str:
    p = asdict(params)
    p.pop("device")
    blob = json.dumps({"model": model, "params": p, "split": split, "classes": classes, "dim": dim,
                       "labels": {s: labels[s] for part in split.values() for s in part if s in labels}},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_predictions(path: Path, ids: list[str], y: np.ndarray, probs: np.ndarray) -> None:
    df = pd.DataFrame({"slide_id": ids, "Y": y, "Y_hat": probs.argmax(1)})
    for c in range(probs.shape[1]):
        df[f"p_{c}"] = probs[:, c]
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def _load_done(out_dir: Path, k: int, fp: str) -> dict | None:
    files = mil_fold_files(out_dir, k)
    js, csv = files["json"], files["csv"]
    if not (js.exists() and csv.exists()):
        return None
    try:
        rec = json.loads(js.read_text())
    except json.JSONDecodeError:
        return None
    return rec if rec.get("fingerprint") == fp else None


def run_benchmark(table: pd.DataFrame, classes: list[str], splits: list[dict] | Path,
                  features_dir: Path, model: str, out_dir: Path, params: TrainParams, *,
                  task: str = "task", encoder: str = "unknown", max_memory_mb: float = 8000,
                  heatmap_slides: int = 2, slide_paths: dict[str, Path] | None = None) -> dict:
    out_dir = Path(out_dir)
    if not isinstance(splits, list):
        splits = read_splits(splits)
    labels = dict(zip(table["slide_id"], table["y"].astype(int)))
    index = index_bags(features_dir, list(table["slide_id"]))
    store = BagStore(index, max_memory_mb)
    folds = []
    for k, split in enumerate(splits):
        fp = _fingerprint(model, params, split, labels, classes, index.dim)
        done = _load_done(out_dir, k, fp)
        if done is not None:
            log.info("%s/%s/%s fold %d: reusing finished results", task, encoder, model, k)
            folds.append(done)
            continue
        res = train_fold(model, store, labels, split, len(classes), params, fold=k)
        files = mil_fold_files(out_dir, k)
        with atomic_path(files["checkpoint"]) as tmp:
            torch.save(res.state_dict, tmp)
        write_predictions(files["csv"], res.test_ids, res.test_y, res.test_probs)
        _heatmaps(files["heatmaps"], res, store, model, params, classes, heatmap_slides, slide_paths or {})
        rec = {"fold": k, "fingerprint": fp, "test": res.test, "val": res.val,
               "best_epoch": res.best_epoch, "select_by": params.select_by, "selection": res.selection,
               "n": {p: len([s for s in split[p] if s in store]) for p in split},
               "seconds": round(res.seconds, 3), "history": res.history}
        write_json(files["json"], rec)
        log.info("%s/%s/%s fold %d: test AUROC %.3f acc %.3f (best epoch %d, %.1fs)", task, encoder,
                 model, k, res.test["auroc"], res.test["accuracy"], res.best_epoch, res.seconds)
        folds.append(rec)
    summary = summarise(folds, task=task, encoder=encoder, model=model, classes=classes,
                        skipped=index.skipped, params=params, in_memory=store.in_memory)
    out = mil_run_files(out_dir)
    write_json(out["metrics"], summary)
    write_metrics_csv(out["table"], summary)
    return summary


def _heatmaps(out: Path, res, store: BagStore, model_name: str, params: TrainParams,
              classes: list[str], n: int, slide_paths: dict[str, Path]) -> None:
    if n <= 0:
        return
    from .models import build_model
    # Positive-looking slides first: one per predicted class order keeps the picks informative.
    order = np.argsort(-res.test_probs.max(1)) if len(res.test_ids) else []
    picks = [res.test_ids[i] for i in order][:n]
    picks = [s for s in picks if store[s].coords is not None and store[s].patch_size_level0]
    if not picks:
        log.info("no coords/patch size in the feature files: heatmaps skipped")
        return
    model = build_model(model_name, store.index.dim, len(classes), **params.model_kwargs)
    model.load_state_dict(res.state_dict)
    model.to(params.device)
    _, attn = predict(model, store, picks, params.device, want_attention=True)
    for sid in picks:
        bag = store[sid]
        draw_heatmap(mil_heatmap(out, sid), attn[sid], bag.coords, bag.patch_size_level0,
                     slide_paths.get(sid), title=sid)


def summarise(folds: list[dict], **meta) -> dict:
    params = meta.pop("params")
    mean, sd = {}, {}
    for m in METRIC_NAMES:
        mean[m], sd[m] = mean_sd([f["test"][m] for f in folds])
    return {**meta, "n_folds": len(folds), "metric": "test set of each fold, weights of the best "
            "validation epoch", "select_by": params.select_by,
            "selection": sorted({f.get("selection", "") for f in folds}), "mean": mean, "sd": sd,
            "folds": [{"fold": f["fold"], **{m: f["test"][m] for m in METRIC_NAMES},
                       "best_epoch": f["best_epoch"], "n": f["n"]} for f in folds],
            "params": {k: v for k, v in asdict(params).items()}}


def write_metrics_csv(path: Path, summary: dict) -> None:
    rows = [{"fold": f["fold"], **{m: f[m] for m in METRIC_NAMES}, "best_epoch": f["best_epoch"]}
            for f in summary["folds"]]
    rows.append({"fold": "mean", **summary["mean"]})
    rows.append({"fold": "sd", **summary["sd"]})
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
