"""Inputs and outputs of `pathgen export`: pathgen coords / features HDF5 in, peers' HDF5 out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..atomic import atomic_path
from ..features.h5io import read_features
from ..tiling.h5io import CHUNK_ROWS, read_coords


class ExportError(ValueError):
    """An export input is missing, inconsistent or not a pathgen file."""


@dataclass
class SlideSource:
    """One slide's pathgen outputs: coords (+ attributes) and, when given, its features."""

    slide_id: str
    coords: np.ndarray
    coords_attrs: dict[str, Any]
    coords_path: Path
    features: np.ndarray | None = None
    root_attrs: dict[str, Any] = field(default_factory=dict)
    features_path: Path | None = None


def _h5_files(path: Path, what: str) -> dict[str, Path]:
    """slide id -> file for a folder of <slide>.h5 (partial files skipped) or a single file."""
    if path.is_file():
        return {path.stem: path}
    if not path.is_dir():
        raise ExportError(f"{what} {path} does not exist (give a folder of <slide>.h5 or one file)")
    files = {p.stem: p for p in sorted(path.glob("*.h5")) if not p.name.endswith(".partial.h5")}
    if not files:
        raise ExportError(f"{what} folder {path} holds no <slide>.h5 files")
    return files


def collect(coords: str | os.PathLike | None = None,
            features: str | os.PathLike | None = None) -> list[SlideSource]:
    """Slides from a coords folder/file and/or a features folder/file (features files carry
    their coords and its attributes, so either is enough; given both, they must agree)."""
    if coords is None and features is None:
        raise ExportError("nothing to export: give --coords and/or --features (folders or .h5 files)")
    out: dict[str, SlideSource] = {}
    for sid, path in (_h5_files(Path(coords), "coords") if coords is not None else {}).items():
        xy, attrs = read_coords(path)
        out[sid] = SlideSource(sid, xy, attrs, path)
    for sid, path in (_h5_files(Path(features), "features") if features is not None else {}).items():
        feats, xy, attrs = read_features(path)
        cattrs = attrs.pop("coords")
        prev = out.get(sid)
        if prev is not None and not np.array_equal(prev.coords, xy):
            raise ExportError(f"{path} and {prev.coords_path} list different patches for {sid}: "
                              "the features were extracted from other coords; re-run features")
        out[sid] = SlideSource(sid, xy, cattrs, prev.coords_path if prev else path, feats, attrs, path)
    return [out[k] for k in sorted(out)]


def write_h5(path: Path, datasets: dict[str, tuple[np.ndarray, dict[str, Any]]],
             root_attrs: dict[str, Any] | None = None) -> Path:
    """Atomically write named datasets (array, attributes) plus root attributes."""
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        for name, (data, attrs) in datasets.items():
            rows = max(1, min(len(data), CHUNK_ROWS))
            ds = f.create_dataset(name, data=data, chunks=(rows,) + data.shape[1:] if len(data) else None,
                                  maxshape=(None,) + data.shape[1:])
            for key, value in attrs.items():
                ds.attrs[key] = value
        for key, value in (root_attrs or {}).items():
            f.attrs[key] = value
    return path
