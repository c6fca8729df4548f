"""The selection CSV, defined once (docs/architecture.md "Selection"): written by
selection/select.py, read by captioning/items.py.

One row per selected patch: ``slide_id,x,y,level,patch_size_level0,size_px,source,score,
prompt,cluster_id,image``. ``x``/``y`` are level-0 pixels of the top-left corner,
``patch_size_level0`` the patch side at level 0, ``size_px`` the side at the tiling target
mpp, ``image`` the patch file relative to the selection's patches root.
"""

from __future__ import annotations

import csv
import os
from dataclasses import astuple, dataclass, fields
from typing import Iterable

from ..atomic import atomic_path


@dataclass(frozen=True)
class SelectionRow:
    slide_id: str
    x: int
    y: int
    level: int
    patch_size_level0: int
    size_px: int
    source: str         # prompt / cluster / both (selection.vectors.SOURCE_*)
    score: str          # retrieval score, formatted to 4 decimals
    prompt: str
    cluster_id: int
    image: str


# Column order of the file = field order of SelectionRow.
SELECTION_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SelectionRow))
# What captioning needs of a row (the rest is provenance of the pick).
CAPTIONING_COLUMNS: tuple[str, ...] = ("slide_id", "x", "y", "level", "patch_size_level0", "size_px",
                                       "image")


def missing_columns(header: Iterable[str] | None, required: Iterable[str] = SELECTION_COLUMNS) -> list[str]:
    """Required columns absent from a CSV header, in schema order."""
    have = set(header or ())
    return [c for c in required if c not in have]


def read_selection_rows(path: str | os.PathLike, required: Iterable[str] = SELECTION_COLUMNS,
                        error: type[Exception] = ValueError) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data line; a header lacking a ``required`` column raises
    ``error`` naming the file, the missing columns and the full schema."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = missing_columns(reader.fieldnames, required)
        if missing:
            raise error(f"selection CSV {path} lacks columns {missing}; a selection CSV needs "
                        f"{','.join(required)} (docs/architecture.md)")
        return list(enumerate(reader, start=2))


def write_selection_csv(path: str | os.PathLike, rows: Iterable[SelectionRow]) -> None:
    """Header + one line per row, atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SELECTION_COLUMNS)
        for row in rows:
            w.writerow(astuple(row))
