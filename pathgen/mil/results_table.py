"""The combined MIL table over task x encoder x model (CSV + Markdown)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path, write_text
from .metrics import METRIC_NAMES

_TITLES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced acc.", "auroc": "Macro AUROC",
           "f1": "Macro F1"}


def _fmt(m: float, s: float) -> str:
    return "n/a" if m is None or math.isnan(m) else f"{m:.3f} ± {s:.3f}"


def build_table(metrics_files: list[Path]) -> pd.DataFrame:
    rows = []
    for path in metrics_files:
        d = json.loads(Path(path).read_text())
        row = {"task": d["task"], "encoder": d["encoder"], "model": d["model"], "n_folds": d["n_folds"],
               "select_by": d.get("select_by", "auroc")}  # older metrics.json: AUROC selection
        for m in METRIC_NAMES:
            row[f"{m}_mean"], row[f"{m}_sd"] = d["mean"][m], d["sd"][m]
        rows.append(row)
    cols = (["task", "encoder", "model", "n_folds", "select_by"]
            + [f"{m}_{s}" for m in METRIC_NAMES for s in ("mean", "sd")])
    return pd.DataFrame(rows, columns=cols).sort_values(["task", "encoder", "model"]).reset_index(drop=True)


def to_markdown(df: pd.DataFrame) -> str:
    head = ["Task", "Encoder", "Model", "Folds", "Selected by"] + [_TITLES[m] for m in METRIC_NAMES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in df.itertuples(index=False):
        d = r._asdict()
        cells = [d["task"], d["encoder"], d["model"], str(d["n_folds"]), d["select_by"]]
        cells += [_fmt(d[f"{m}_mean"], d[f"{m}_sd"]) for m in METRIC_NAMES]
        lines.append("| " + " | ".join(cells) + " |")
    note = ("\nMean ± sample sd over folds; test metrics at the best validation epoch (criterion: "
            "`auroc` = macro AUROC, `f1_auc` = macro F1 + macro AUROC).\n")
    return "\n".join(lines) + "\n" + note


def write_table(metrics_files: list[Path], out_csv: Path, out_md: Path) -> pd.DataFrame:
    df = build_table(metrics_files)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    write_text(out_md, to_markdown(df))
    return df
