"""Train/val/test splits: CLAM `splits_<k>.csv` files, JSON, or generated folds.

CLAM convention: one CSV per fold with an unnamed index column and columns `train, val,
test` of slide ids, shorter columns padded with empty cells. JSON: `{"folds": [{"train":
[...], "val": [...], "test": [...]}, ...]}` (a bare list of such objects is accepted).

Generated folds are patient-level (all slides of a case land in one part) and stratified by
label: scikit-learn's StratifiedGroupKFold for test folds, then the same on the remaining
patients to carve out validation.

Generated folds are incremental: `make_splits` keeps each patient's role per fold in
`<out_dir>/fold_assignment.csv` (not a Snakemake output, so it survives a rerun of the rule).
On a later run with the same folds/val_fraction/seed/classes, known patients keep their test
fold and their train/val role in every other fold; new patients are placed deterministically
(`extend_assignment`); patients gone from the labels table are dropped. Changed settings (or no
assignment file) start over with the StratifiedGroupKFold generation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from ..atomic import atomic_path, write_json
from ..config import ConfigError
from .files import MIL_FOLD_ASSIGNMENT_CSV, mil_split_file, mil_split_files, mil_splits_companions

log = logging.getLogger(__name__)
PARTS = ("train", "val", "test")
Split = dict[str, list[str]]


def _sgkf(y, groups, n_splits: int, seed: int):
    with warnings.catch_warnings():
        # "least populated class has only N members" is expected on small cohorts.
        warnings.simplefilter("ignore", UserWarning)
        return list(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                    .split(np.zeros(len(y)), y, groups))


def _check_generatable(table: pd.DataFrame, folds: int) -> None:
    n_cases = table["case_id"].nunique()
    if n_cases < folds:
        raise ConfigError(f"{folds} folds need at least {folds} patients; the labels table has "
                          f"{n_cases}. Lower the task's `folds`.")
    if np.bincount(table["y"].to_numpy()).max() < folds:
        raise ConfigError(f"{folds} folds need at least {folds} slides in some class; lower `folds`")


def generate_splits(table: pd.DataFrame, folds: int, val_fraction: float, seed: int) -> list[Split]:
    """Patient-level stratified k-fold: each fold's test part is one fold, val carved from train."""
    _check_generatable(table, folds)
    y, groups = table["y"].to_numpy(), table["case_id"].to_numpy()
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


def read_splits(path: str | Path) -> list[Split]:
    """Folder of `splits_<k>.csv`, one CSV, or JSON -> list of folds (ordered by k)."""
    path = Path(path)
    if path.is_dir():
        files = list(mil_split_files(path).values())
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
        paths.append(mil_split_file(out_dir, k))
        write_clam_split(paths[-1], s)
    for k, stale in mil_split_files(out_dir).items():  # folds of an earlier, larger k
        if k >= len(splits):
            stale.unlink()
    write_json(mil_splits_companions(out_dir)["summary"], split_summary(splits, table, classes))
    return paths


# -- incremental generated folds ------------------------------------------------------------
ASSIGNMENT_FILE = MIL_FOLD_ASSIGNMENT_CSV
_HEADER = "# pathgen fold assignment "
Assignment = dict[str, list[str]]  # case_id -> part ("train"/"val"/"test") in fold 0..k-1


def assignment_settings(folds: int, val_fraction: float, seed: int, classes: list[str]) -> dict:
    """What shapes generated folds: any change starts the assignment over."""
    return {"folds": int(folds), "val_fraction": float(val_fraction), "seed": int(seed),
            "classes": [str(c) for c in classes]}


def splits_to_assignment(splits: list[Split], table: pd.DataFrame) -> Assignment:
    case_of = dict(zip(table["slide_id"], table["case_id"]))
    out: Assignment = {str(c): ["train"] * len(splits) for c in table["case_id"].unique()}
    for k, s in enumerate(splits):
        for p in PARTS:
            for slide in s[p]:
                out[str(case_of[slide])][k] = p
    return out


def assignment_to_splits(assignment: Assignment, table: pd.DataFrame, folds: int) -> list[Split]:
    out: list[Split] = [{p: [] for p in PARTS} for _ in range(folds)]
    for slide, case in zip(table["slide_id"], table["case_id"]):
        for k, p in enumerate(assignment[str(case)]):
            out[k][p].append(slide)
    return [{p: sorted(s[p]) for p in PARTS} for s in out]


def write_assignment(path: Path, assignment: Assignment, settings: dict) -> None:
    """CSV `case_id,fold,part` (one row per patient and fold) under a settings header line."""
    rows = [(c, k, p) for c in sorted(assignment) for k, p in enumerate(assignment[c])]
    df = pd.DataFrame(rows, columns=["case_id", "fold", "part"])
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            fh.write(_HEADER + json.dumps(settings, sort_keys=True) + "\n")
            df.to_csv(fh, index=False)


def read_assignment(path: Path) -> tuple[dict, Assignment] | None:
    """(settings, assignment) of an earlier run, or None (absent or unreadable: start over)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path) as fh:
            first = fh.readline()
            if not first.startswith(_HEADER):
                raise ValueError("no settings header")
            settings = json.loads(first[len(_HEADER):])
            df = pd.read_csv(fh, dtype={"case_id": str, "fold": int, "part": str},
                             keep_default_na=False)
        folds = int(settings["folds"])
        out: Assignment = {}
        for case, k, p in zip(df["case_id"], df["fold"], df["part"]):
            if p not in PARTS or not 0 <= k < folds:
                raise ValueError(f"bad row {case},{k},{p}")
            out.setdefault(case, [""] * folds)[k] = p
        if any("" in parts or parts.count("test") != 1 for parts in out.values()):
            raise ValueError("every patient needs one part per fold and exactly one test fold")
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as err:
        log.warning("fold assignment %s unreadable (%s); generating folds afresh", path, err)
        return None
    return settings, out


def _stable_hash(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def _val_share(val_fraction: float) -> float:
    # generate_splits carves val as one of max(2, round(1/val_fraction)) patient folds.
    return 1.0 / max(2, round(1 / val_fraction))


def extend_assignment(old: Assignment, table: pd.DataFrame, folds: int, val_fraction: float,
                      seed: int) -> Assignment:
    """Keep known patients' parts, drop vanished ones, place new ones deterministically.

    A new patient (in stable-hash order) goes to the test fold holding the fewest patients of
    its majority label (then the fewest patients, then a stable hash of case_id, seed and fold);
    in each other fold it becomes val when that moves the fold's val share of its label
    (among that fold's non-test patients) closer to the val share `generate_splits` aims at.
    """
    major = {str(c): int(g.value_counts().sort_index().idxmax())  # most slides; ties: lowest y
             for c, g in table.groupby("case_id", sort=False)["y"]}
    out = {c: list(old[c]) for c in major if c in old}
    new = sorted((c for c in major if c not in old), key=lambda c: (_stable_hash(seed, c), c))
    share = _val_share(val_fraction)
    for case in new:
        m = major[case]
        same = [c for c in out if major[c] == m]
        test_of = [out[c].index("test") for c in same]
        totals = [sum(parts[k] == "test" for parts in out.values()) for k in range(folds)]
        fold = min(range(folds), key=lambda k: (test_of.count(k), totals[k],
                                                _stable_hash(seed, case, k)))
        parts = ["train"] * folds
        parts[fold] = "test"
        for k in range(folds):
            if k == fold:
                continue
            pool = [out[c][k] for c in same if out[c][k] != "test"]
            n_val, expected = pool.count("val"), share * (len(pool) + 1)
            if n_val + 0.5 < expected:  # one more val is nearer the target than none
                parts[k] = "val"
        out[case] = parts
    return out


def incremental_splits(table: pd.DataFrame, out_dir: Path, classes: list[str], folds: int,
                       val_fraction: float, seed: int) -> list[Split]:
    """Generated folds that keep an earlier run's patients where they were (see module doc)."""
    _check_generatable(table, folds)
    path = mil_splits_companions(out_dir)["assignment"]
    settings = assignment_settings(folds, val_fraction, seed, classes)
    previous = read_assignment(path)
    splits = None
    if previous is not None and previous[0] != settings:
        log.info("fold settings changed (%s -> %s): generating folds afresh", previous[0], settings)
    elif previous is not None:
        old = previous[1]
        cases = set(map(str, table["case_id"]))
        kept = cases & set(old)
        if kept:
            assignment = extend_assignment(old, table, folds, val_fraction, seed)
            candidate = assignment_to_splits(assignment, table, folds)
            if all(s["train"] and s["test"] for s in candidate):
                log.info("folds: %d patient(s) kept, %d added, %d dropped (%s)", len(kept),
                         len(cases - kept), len(set(old) - cases), path)
                splits = candidate
            else:
                log.warning("folds from %s would leave a fold without train or test patients; "
                            "generating folds afresh", path)
    if splits is None:
        splits = generate_splits(table, folds, val_fraction, seed)
        assignment = splits_to_assignment(splits, table)
    write_assignment(path, assignment, settings)
    return splits


def make_splits(table: pd.DataFrame, classes: list[str], out_dir: Path, *, given: Path | None,
                folds: int, val_fraction: float, seed: int) -> list[Path]:
    """Read the given splits (checked) or generate folds; write them as CLAM files in out_dir.

    Generated folds are incremental across runs through `<out_dir>/fold_assignment.csv`."""
    if given is not None:
        splits = read_splits(given)
        check_splits(splits, table, str(given))
    else:
        splits = incremental_splits(table, out_dir, classes, folds, val_fraction, seed)
    return save_splits(out_dir, splits, table, classes)
