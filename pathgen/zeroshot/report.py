"""Confusion matrices (CSV + PNG) and the combined benchmark x model table (CSV + Markdown)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text

TABLE_METRICS = ("accuracy", "balanced_accuracy", "weighted_f1", "macro_auroc")


def write_confusion_csv(target: Path, cm: np.ndarray, classes: list[str]) -> None:
    with atomic_path(target) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["true\\pred", *classes])
        for c, row in zip(classes, cm):
            w.writerow([c, *map(int, row)])


def plot_confusion(target: Path, cm: np.ndarray, classes: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1.0 + 0.55 * n), dpi=110)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _fmt(value, ci=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def table_rows(result_files: list[str | Path]) -> list[dict]:
    rows = []
    for f in result_files:
        r = json.loads(Path(f).read_text())
        m = r["metrics"]
        ci = r.get("ci95") or m.get("ci95") or {}  # top level since CIs left `metrics`
        row = {"benchmark": r["dataset"], "model": r.get("pathgen_encoder", r["model"]),
               "prompting": r.get("prompting", ""),
               "n_images": r.get("n_images"), "chance": r.get("chance_balanced_accuracy")}
        for k in TABLE_METRICS:
            row[k] = m.get(k)
            row[f"{k}_ci_low"], row[f"{k}_ci_high"] = (ci.get(k) or [None, None])
        rows.append(row)
    return sorted(rows, key=lambda r: (r["benchmark"], r["prompting"], r["model"]))


def write_table(result_files: list[str | Path], csv_path: Path, md_path: Path) -> list[dict]:
    rows = table_rows(result_files)
    cols = ["benchmark", "model", "prompting", "n_images", "chance"] + [
        c for k in TABLE_METRICS for c in (k, f"{k}_ci_low", f"{k}_ci_high")]
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    lines = ["| benchmark | model | prompting | n | chance | accuracy | balanced accuracy [95% CI] "
             "| weighted F1 | macro AUROC |", "|---|---|---|---|---|---|---|---|---|"]
    def ci_of(r, k):
        return (r[f"{k}_ci_low"], r[f"{k}_ci_high"]) if r[f"{k}_ci_low"] is not None else None

    for r in rows:
        def ci(k, r=r):
            return ci_of(r, k)
        lines.append(f"| {r['benchmark']} | {r['model']} | {r['prompting']} | {r['n_images']} | "
                     f"{_fmt(r['chance'])} | {_fmt(r['accuracy'], ci('accuracy'))} | "
                     f"{_fmt(r['balanced_accuracy'], ci('balanced_accuracy'))} | "
                     f"{_fmt(r['weighted_f1'])} | {_fmt(r['macro_auroc'], ci('macro_auroc'))} |")
    write_text(md_path, "\n".join(lines) + "\n")
    return rows
