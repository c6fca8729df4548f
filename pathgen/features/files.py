"""File names of the features stage: ``<tiles dir>/features_<encoder>/<slide>.h5``.

No config import (``pathgen.paths.Layout`` resolves the folders from the config).
"""

from __future__ import annotations

from pathlib import Path

FEATURES_DIR_PREFIX = "features_"  # features_<encoder>/ (pathgen's and TRIDENT's name)


def features_dir(tiles: str | Path, encoder: str) -> Path:
    """<tiles dir>/features_<encoder> (TRIDENT names its per-encoder folder the same way)."""
    return Path(tiles) / f"{FEATURES_DIR_PREFIX}{encoder}"


def slide_features_file(features_dir: str | Path, slide: str) -> Path:
    """<features dir>/<slide>.h5, the name Layout.features uses (for plain-path CLIs)."""
    return Path(features_dir) / f"{slide}.h5"


def features_partial_file(features_h5: str | Path) -> Path:
    """<features HDF5>.partial: the resumable file a features HDF5 is written into, beside it
    (os.replace-d onto it when complete)."""
    out = Path(features_h5)
    return out.with_name(out.name + ".partial")
