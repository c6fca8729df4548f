"""Train/val/test splits: CLAM `splits_<k>.csv` files, JSON, or generated folds.

CLAM convention: one CSV per fold with an unnamed index column and columns `train, val,
test` of slide ids, shorter columns padded with empty cells. JSON: `{"folds": [{"train":
[...], "val": [...], "test": [...]}, ...]}` (a bare list of such objects is accepted).

Generated folds are patient-level (all slides of a case land in one part) and stratified by
label: scikit-learn's StratifiedGroupKFold for test folds, then the same on the remaining
patients to carve out validation.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from ..atomic import atomic_path, write_json
from ..config import ConfigError

log = logging.getLogger(__name__)
PARTS = ("train", "val", "test")
Split = dict[str, list[str]]


def _sgkf(y, groups, n_splits: int, seed: int):
    with warnings.catch_warnings():
        # "least populated class has only N members" is expected on small cohorts.
        warnings.simplefilter("ignore", UserWarning)
        return list(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                    .split(np.zeros(len(y)), y, groups))


def generate_splits(table: pd.DataFrame, folds: int, val_fraction: float, seed: int) -> list[Split]:
    """Patient-level stratified k-fold: each fold's test part is one fold, val carved from train."""
    n_cases = table["case_id"].nunique()
    if n_cases < folds:
        raise ConfigError(f"{folds} folds need at least {folds} patients; the labels table has "
                          f"{n_cases}. Lower the task's `folds`.")
    y, groups = table["y"].to_numpy(), table["case_id"].to_numpy()
    if np.bincount(y).max() < folds:
        raise ConfigError(f"{folds} folds need at least {folds} slides in some class; lower `folds`")
    slides = table["slide_id"].to_numpy()
    out = []
    for k, (rest, test) in enumerate(_sgkf(y, groups, folds, seed)):
        # val = one of n_val patient folds; sklearn needs n_val <= patients and <= the
        # largest class's slide count.
        n_val = min(max(2, round(1 / val_fraction)), len(set(groups[rest])),
                    int(np.bincount(y[rest]).max()))
        if n_val < 2:
            train, val = rest, np.array([], dtype=int)
        else:
            tr, va = _sgkf(y[rest], groups[rest], n_val, seed + 1000 + k)[0]
            train, val = rest[tr], rest[va]
        out.append({"train": sorted(slides[train]), "val": sorted(slides[val]),
                    "test": sorted(slides[test])})
    return out


def write_clam_split(path: Path, split: Split) -> None:
    cols = {p: pd.Series(split[p], dtype=object) for p in PARTS}
    df = pd.concat(cols.values(), ignore_index=True, axis=1)
    df.columns = list(PARTS)
    with atomic_path(path) as tmp:
        df.to_csv(tmp)  # index column kept, as CLAM writes it


def read_clam_split(path: Path) -> Split:
    df = pd.read_csv(path, dtype=str, keep_default_na=True)
    missing = set(PARTS) - set(df.columns)
    if missing:
        raise ConfigError(f"splits file {path} lacks column(s) {sorted(missing)}; CLAM splits have "
                          f"columns train,val,test of slide ids")
    return {p: [s.strip() for s in df[p].dropna() if s.strip()] for p in PARTS}


def _fold_index(path: Path) -> int:
    m = re.search(r"splits_(\d+)\.csv$", path.name)
    return int(m.group(1)) if m else -1


def read_splits(path: str | Path) -> list[Split]:
    """Folder of `splits_<k>.csv`, one CSV, or JSON -> list of folds (ordered by k)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("splits_*.csv"), key=_fold_index)
        files = [f for f in files if _fold_index(f) >= 0]
        if not files:
            raise ConfigError(f"splits folder {path} holds no splits_<k>.csv files")
        return [read_clam_split(f) for f in files]
    if not path.exists():
        raise ConfigError(f"splits {path} does not exist; fix the task's `splits` (or set it to null "
                          "to generate folds)")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"splits file {path} is not valid JSON: {err}") from None
        folds = data.get("folds") if isinstance(data, dict) else data
        if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
            raise ConfigError(f"{path}: expected {{\"folds\": [{{\"train\": [...], \"val\": [...], "
                              f"\"test\": [...]}}]}}")
        return [{p: [str(s) for s in f.get(p, [])] for p in PARTS} for f in folds]
    return [read_clam_split(path)]


def check_splits(splits: list[Split], table: pd.DataFrame, source: str) -> None:
    """Unknown slide ids, overlaps and patient leakage are errors naming the file."""
    known = set(table["slide_id"])
    case_of = dict(zip(table["slide_id"], table["case_id"]))
    for k, s in enumerate(splits):
        for p in PARTS:
            unknown = sorted(set(s[p]) - known)
            if unknown:
                raise ConfigError(f"{source} fold {k}: {p} lists slide(s) not in the labels table: "
                                  f"{unknown[:5]}")
        if not s["train"] or not s["test"]:
            raise ConfigError(f"{source} fold {k}: empty train or test part")
        for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
            both = set(s[a]) & set(s[b])
            if both:
                raise ConfigError(f"{source} fold {k}: slide(s) in both {a} and {b}: {sorted(both)[:5]}")
            leak = {case_of[x] for x in s[a]} & {case_of[x] for x in s[b]}
            if leak:
                log.warning("%s fold %d: patient(s) %s have slides in both %s and %s",
                            source, k, sorted(leak)[:5], a, b)


def split_summary(splits: list[Split], table: pd.DataFrame, classes: list[str]) -> dict:
    label = dict(zip(table["slide_id"], table["label"]))
    case_of = dict(zip(table["slide_id"], table["case_id"]))
    return {"n_folds": len(splits), "classes": classes,
            "folds": [{p: {"slides": len(s[p]), "patients": len({case_of[x] for x in s[p]}),
                           "per_class": {c: sum(label[x] == c for x in s[p]) for c in classes}}
                       for p in PARTS} for s in splits]}


def save_splits(out_dir: Path, splits: list[Split], table: pd.DataFrame, classes: list[str]) -> list[Path]:
    out_dir = Path(out_dir)
    paths = []
    for k, s in enumerate(splits):
        paths.append(out_dir / f"splits_{k}.csv")
        write_clam_split(paths[-1], s)
    for stale in out_dir.glob("splits_*.csv"):  # folds of an earlier, larger k
        if _fold_index(stale) >= len(splits):
            stale.unlink()
    write_json(out_dir / "splits_summary.json", split_summary(splits, table, classes))
    return paths


def make_splits(table: pd.DataFrame, classes: list[str], out_dir: Path, *, given: Path | None,
                folds: int, val_fraction: float, seed: int) -> list[Path]:
    """Read the given splits (checked) or generate folds; write them as CLAM files in out_dir."""
    if given is not None:
        splits = read_splits(given)
        check_splits(splits, table, str(given))
    else:
        splits = generate_splits(table, folds, val_fraction, seed)
    return save_splits(out_dir, splits, table, classes)
