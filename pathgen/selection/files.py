"""File names of the selection stage: ``<features dir>/selection/<slide>.csv`` and the
selected patches ``selection/patches/<slide>/`` (the CSV's columns: pathgen/formats/selection_csv.py).

No config import.
"""

from __future__ import annotations

from pathlib import Path

SELECTION_DIR = "selection"
PATCHES_DIR = "patches"


def features_selection_dir(features_dir: str | Path) -> Path:
    """<features dir>/selection, the folder Layout.selection_dir uses."""
    return Path(features_dir) / SELECTION_DIR


def selection_patches_dir(selection_dir: str | Path) -> Path:
    """<selection dir>/patches, the patches root Layout.selection_patches_root uses."""
    return Path(selection_dir) / PATCHES_DIR


def slide_patches_dir(patches_root: str | Path, slide: str) -> Path:
    """One slide's selected-patch folder under the patches root."""
    return Path(patches_root) / slide


def slide_selection_file(selection_dir: str | Path, slide: str) -> Path:
    """<selection dir>/<slide>.csv, the name Layout.selection uses (jobs given the folder)."""
    return Path(selection_dir) / f"{slide}.csv"


def report_findings_cache(cache_dir: str | Path, report_sha256: str) -> Path:
    """Cached findings of one pathology report (selection), keyed by a hash prefix."""
    return Path(cache_dir) / f"{report_sha256[:24]}.json"
