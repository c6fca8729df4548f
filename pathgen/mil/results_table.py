"""The combined MIL table over task x encoder x model: the CSV has one row per run (long,
what the report and scripts read); the Markdown puts the encoders side by side (one column
block per encoder, rows task x MIL model, the best mean of each metric in bold), as papers
compare patch encoders, then lists every run."""

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


def side_by_side(df: pd.DataFrame) -> pd.DataFrame:
    """Rows (task, model), columns (encoder, metric) of mean ± sd strings; encoders in the
    order they first appear (build_table sorts them by name)."""
    encoders = list(dict.fromkeys(df["encoder"]))
    rows = []
    for (task, model), grp in df.groupby(["task", "model"], sort=True):
        by_enc = {r["encoder"]: r for _, r in grp.iterrows()}
        row = {("", "Task"): task, ("", "Model"): model}
        for m in METRIC_NAMES:
            means = {e: by_enc[e][f"{m}_mean"] for e in encoders if e in by_enc}
            finite = [v for v in means.values() if v is not None and not math.isnan(v)]
            best = max(finite) if len(finite) > 1 else None
            for e in encoders:
                if e not in by_enc:
                    cell = "-"
                else:
                    cell = _fmt(by_enc[e][f"{m}_mean"], by_enc[e][f"{m}_sd"])
                    if best is not None and means[e] == best:
                        cell = f"**{cell}**"
                row[(e, _TITLES[m])] = cell
        rows.append(row)
    cols = [("", "Task"), ("", "Model")] + [(e, _TITLES[m]) for e in encoders for m in METRIC_NAMES]
    return pd.DataFrame(rows, columns=pd.MultiIndex.from_tuples(cols))


def side_by_side_markdown(df: pd.DataFrame) -> str:
    """The encoders side by side: one column block per encoder (its name heads each column)."""
    wide = side_by_side(df)
    head = [name if enc == "" else f"{enc} · {name}" for enc, name in wide.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in wide.itertuples(index=False):
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(df: pd.DataFrame) -> str:
    out = ""
    if df["encoder"].nunique() > 1:
        out = ("## Encoders side by side\n\n" + side_by_side_markdown(df)
               + "\nBold: the best mean of the row's metric over the encoders.\n\n## Every run\n\n")
    return out + _runs_markdown(df)


def _runs_markdown(df: pd.DataFrame) -> str:
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
