"""File names of the MIL benchmarks (``<results>/eval/mil/``: ``<task>/splits/``,
``<task>/<encoder>/<model>/``, the combined table), and where MIL looks for a slide's bag in
a user's feature folder.

No config import.
"""

from __future__ import annotations

from pathlib import Path

from ..export.files import clam_export_files
from ..features.files import slide_features_file

MIL_DIR = "mil"                                  # <results>/eval/mil/
SPLITS_DIR = "splits"                            # <task>/splits/: splits_<k>.csv + summary
METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
SPLITS_SUMMARY_JSON = "splits_summary.json"
MIL_TABLE_CSV = "mil_table.csv"
MIL_TABLE_MD = "mil_table.md"
MIL_FOLD_ASSIGNMENT_CSV = "fold_assignment.csv"  # splits folder: each patient's role per fold
MIL_HEATMAPS_DIR = "heatmaps"                    # run folder: heatmaps/fold_<k>/<slide>.png


def mil_table_files(mil_dir: str | Path) -> dict[str, Path]:
    """The combined MIL table (rule mil_table)."""
    d = Path(mil_dir)
    return {"csv": d / MIL_TABLE_CSV, "md": d / MIL_TABLE_MD}


def mil_run_files(run_dir: str | Path) -> dict[str, Path]:
    """A MIL run folder's summary files (mean +- sd over folds)."""
    d = Path(run_dir)
    return {"metrics": d / METRICS_JSON, "table": d / METRICS_CSV}


def mil_fold_files(run_dir: str | Path, k: int) -> dict[str, Path]:
    """One fold's files in a MIL run folder; CLAM names the selected weights s_<k>_checkpoint.pt."""
    d = Path(run_dir)
    return {"json": d / f"fold_{k}.json", "csv": d / f"fold_{k}.csv",
            "checkpoint": d / f"s_{k}_checkpoint.pt", "heatmaps": d / MIL_HEATMAPS_DIR / f"fold_{k}"}


def mil_heatmap(heatmaps_dir: str | Path, slide: str) -> Path:
    return Path(heatmaps_dir) / f"{slide}.png"


def mil_split_file(splits_dir: str | Path, k: int | str) -> Path:
    """CLAM's fold file splits_<k>.csv (columns train,val,test)."""
    return Path(splits_dir) / f"splits_{k}.csv"


def mil_split_files(splits_dir: str | Path) -> dict[int, Path]:
    """The splits_<k>.csv files present in a folder, by k (ascending)."""
    pattern = mil_split_file("", "*").name  # splits_*.csv
    head, tail = pattern.split("*")
    found = {}
    for f in Path(splits_dir).glob(pattern):
        k = f.name[len(head):len(f.name) - len(tail)]
        if k.isdigit():
            found[int(k)] = f
    return dict(sorted(found.items()))


def mil_splits_companions(splits_dir: str | Path) -> dict[str, Path]:
    """The summary beside the fold files, and the fold assignment of generated folds."""
    d = Path(splits_dir)
    return {"summary": d / SPLITS_SUMMARY_JSON, "assignment": d / MIL_FOLD_ASSIGNMENT_CSV}


def peer_feature_candidates(features_dir: str | Path, slide: str) -> tuple[Path, ...]:
    """Where a user's feature folder may hold a slide's bag, in the order MIL looks:
    pathgen/TRIDENT/STAMP ``<slide>.h5``, then CLAM ``h5_files/`` and ``pt_files/``."""
    clam = clam_export_files(features_dir, slide)
    return slide_features_file(features_dir, slide), clam["h5"], clam["pt"]
