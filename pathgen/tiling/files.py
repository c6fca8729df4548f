"""File names of the tiling stage, under a tiles folder (``<results>/tiles/<tiling tag>/``).

Library code joins these (never spells a name itself); ``pathgen.paths.Layout`` resolves the
folders from the config. No config import: a module that needs a file name imports this.
"""

from __future__ import annotations

import os
from pathlib import Path

TILES_DIR = "tiles"          # <results>/tiles/<tiling tag>/
COORDS_DIR = "coords"        # coords/<slide>.h5 (docs/architecture.md "Coordinates HDF5")
QC_DIR = "qc"                # qc/<slide>.jpg: tissue mask + grid over a thumbnail
CONTOURS_DIR = "contours"    # contours/<slide>.geojson: tissue outlines


def tiles_dir(results_dir: str | Path, tag: str) -> Path:
    """The folder of one tiling geometry (the tag names the settings that shape it)."""
    return Path(results_dir) / TILES_DIR / tag


def coords_dir(tiles: str | Path) -> Path:
    return Path(tiles) / COORDS_DIR


def coords_file(tiles: str | Path, slide: str) -> Path:
    return coords_dir(tiles) / f"{slide}.h5"


def qc_file(tiles: str | Path, slide: str) -> Path:
    return Path(tiles) / QC_DIR / f"{slide}.jpg"


def qc_files(tiles: str | Path, slides) -> dict[str, str]:
    """slide -> str(qc_file(tiles, slide)) for a whole cohort in one pass (rule build_report's
    params name every slide's; 30,000 Path joins cost ~0.2 s at each Snakefile parse). The
    same strings: slide ids are plain file names (checked: letters, digits, '.', '_', '-')."""
    folder = os.path.join(str(Path(tiles) / QC_DIR), "")
    return {s: f"{folder}{s}.jpg" for s in slides}


def contours_file(tiles: str | Path, slide: str) -> Path:
    return Path(tiles) / CONTOURS_DIR / f"{slide}.geojson"
