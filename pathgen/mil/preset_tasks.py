"""`pathgen mil-labels`: a preset's labels table + leakage-free splits, written for a task.

Splits: official parts where the dataset has them (CAMELYON16's test set; BRACS's train/val/
test folders), seeded and stratified by patient otherwise. CAMELYON16: each of `folds` seeds
draws `val_fraction` of the training patients (stratified) as validation and tests on the
official test set (the PathGen protocol: 5 x 242 train / 27 val / official test). No patient
is ever in two parts of a fold (checked; an error otherwise).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from ..atomic import atomic_path
from ..config import ConfigError
from ..config.mil_presets import get_preset
from . import label_builders as lb
from .splits import PARTS, Split, generate_splits, save_splits

log = logging.getLogger(__name__)


def build_table(preset: str, slides_dir: Path, *, reference: Path | None = None,
                manifest: Path | None = None) -> tuple[dict, pd.DataFrame]:
    p = get_preset(preset)
    builder = p["builder"]
    if builder == "camelyon16":
        return p, lb.camelyon16_table(slides_dir, p, reference)
    if builder == "bracs":
        return p, lb.bracs_table(slides_dir, p)
    if builder == "tcga":
        return p, lb.tcga_table(slides_dir, p, manifest)
    raise ConfigError(f"preset {p['name']}: unknown builder {builder!r} in pathgen/data/mil_presets.yaml")


def _patient_labels(table: pd.DataFrame) -> pd.Series:
    """Each patient's most frequent label (ties: the first class in sorted order)."""
    return table.groupby("case_id")["label"].agg(lambda s: s.value_counts().sort_index().idxmax())


def official_test_splits(table: pd.DataFrame, folds: int, val_fraction: float, seed: int) -> list[Split]:
    """Fixed test part; per seed, a stratified patient-level train/val draw from the rest."""
    train = table[table["part"] != "test"]
    test = sorted(table.loc[table["part"] == "test", "slide_id"])
    pl = _patient_labels(train)
    strat = pl if pl.value_counts().min() >= 2 else None
    out = []
    for k in range(folds):
        tr_p, va_p = train_test_split(pl.index.to_numpy(), test_size=val_fraction, stratify=strat,
                                      random_state=seed + k)
        va_set = set(va_p)
        out.append({"train": sorted(train.loc[~train["case_id"].isin(va_set), "slide_id"]),
                    "val": sorted(train.loc[train["case_id"].isin(va_set), "slide_id"]), "test": test})
    return out


def preset_splits(table: pd.DataFrame, classes: list[str], folds: int, val_fraction: float,
                  seed: int) -> list[Split]:
    parts = set(table["part"])
    if parts >= {"train", "val", "test"}:                    # one official split (BRACS folders)
        return [{p: sorted(table.loc[table["part"] == p, "slide_id"]) for p in PARTS}]
    if "test" in parts:                                      # official test set (CAMELYON16)
        return official_test_splits(table, folds, val_fraction, seed)
    if parts - {""}:
        raise ConfigError(f"official split has only part(s) {sorted(parts - {''})}; need train and test")
    t = table.assign(y=table["label"].map({c: i for i, c in enumerate(classes)}).astype(int))
    return generate_splits(t, folds, val_fraction, seed)


def check_no_leakage(splits: list[Split], table: pd.DataFrame) -> None:
    case_of = dict(zip(table["slide_id"], table["case_id"]))
    for k, s in enumerate(splits):
        seen: dict[str, str] = {}
        for p in PARTS:
            for case in {case_of[x] for x in s[p]}:
                if seen.setdefault(case, p) != p:
                    raise ConfigError(f"fold {k}: patient {case} has slides in both {seen[case]} and {p}; "
                                      "official parts must keep each patient in one part")


def write_task(preset: str, slides_dir: Path, out_csv: Path, splits_dir: Path | None, *,
               reference: Path | None = None, manifest: Path | None = None, folds: int | None = None,
               val_fraction: float | None = None, seed: int = 0) -> dict:
    """Write the labels CSV (+ CLAM splits) and return a summary for the CLI."""
    p, table = build_table(preset, slides_dir, reference=reference, manifest=manifest)
    with atomic_path(Path(out_csv)) as tmp:
        table.to_csv(tmp, index=False)
    summary = {"preset": p["name"], "labels": str(out_csv), "slides": len(table),
               "patients": int(table["case_id"].nunique()),
               "per_class": {c: int((table["label"] == c).sum()) for c in p["classes"]}}
    if splits_dir is not None:
        splits = preset_splits(table, p["classes"], folds or p["folds"], val_fraction or p["val_fraction"], seed)
        check_no_leakage(splits, table)
        save_splits(Path(splits_dir), splits, table, p["classes"])
        summary.update(splits=str(splits_dir), folds=len(splits),
                       fold_sizes=[{q: len(s[q]) for q in PARTS} for s in splits])
    return summary
