"""Patch-feature HDF5 files (docs/architecture.md "Features HDF5").

Layout follows CLAM's `h5_files/<slide>.h5` and TRIDENT's `features_<encoder>/<slide>.h5`:
dataset `features` (N, D) float32/float16 and `coords` (N, 2) int64 carrying the coords
file's attributes; root attributes `encoder`, `weights`, `preprocessing`, `dtype`,
`embed_dim`, `pathgen_version`. N = 0 is a valid file with shape (0, D).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..atomic import atomic_path
from ..h5attrs import plain as _plain

ROOT_ATTRS = ("encoder", "weights", "preprocessing", "dtype", "embed_dim", "pathgen_version")
CHUNK_ROWS = 1024


class FeaturesFileError(ValueError):
    """A features HDF5 is missing, unreadable or does not follow the contract."""


def create_datasets(f: h5py.File, n: int, dim: int, dtype: str, coords: np.ndarray,
                    coords_attrs: dict[str, Any], attrs: dict[str, Any]) -> h5py.Dataset:
    """Lay out `features` (filled later, chunked by rows) and `coords` in an open file."""
    rows = max(1, min(n, CHUNK_ROWS))
    feats = f.create_dataset("features", shape=(n, dim), dtype=np.dtype(dtype),
                             chunks=(rows, dim) if n else None, maxshape=(None, dim))
    cds = f.create_dataset("coords", data=np.asarray(coords, np.int64).reshape(-1, 2),
                           chunks=(rows, 2) if n else None, maxshape=(None, 2))
    for key, value in coords_attrs.items():
        cds.attrs[key] = value
    for key, value in attrs.items():
        f.attrs[key] = value
    return feats


def root_attrs(encoder: str, weights: str, preprocessing: str, dtype: str, embed_dim: int,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from .. import __version__

    out = {"encoder": encoder, "weights": weights, "preprocessing": preprocessing,
           "dtype": dtype, "embed_dim": int(embed_dim), "pathgen_version": __version__}
    out.update(extra or {})
    return out


def write_features(path: str | os.PathLike, features: np.ndarray, coords: np.ndarray,
                   coords_attrs: dict[str, Any], attrs: dict[str, Any]) -> Path:
    """Atomically write a whole (small) features file; N = 0 allowed."""
    missing = [k for k in ROOT_ATTRS if k not in attrs]
    if missing:
        raise ValueError(f"features attributes missing {missing} (build them with root_attrs)")
    features = np.asarray(features)
    if features.ndim != 2 or len(features) != len(np.asarray(coords).reshape(-1, 2)):
        raise ValueError(f"features {features.shape} and coords {np.shape(coords)} do not match")
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        ds = create_datasets(f, len(features), features.shape[1], attrs["dtype"], coords,
                             coords_attrs, attrs)
        if len(features):
            ds[...] = features.astype(attrs["dtype"])
    return path


def read_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Return (features (N, D), coords (N, 2) int64, attrs) with the coords attributes under
    ``attrs["coords"]``."""
    path = Path(path)
    if not path.exists():
        raise FeaturesFileError(f"features file {path} does not exist; run `pathgen features` "
                                "for this slide")
    try:
        with h5py.File(path, "r") as f:
            for key in ("features", "coords"):
                if key not in f:
                    raise FeaturesFileError(f"{path} has no '{key}' dataset (not a pathgen/CLAM/"
                                            "TRIDENT features file?)")
            feats = f["features"][()]
            coords = f["coords"][()].astype(np.int64).reshape(-1, 2)
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            attrs["coords"] = {k: _plain(v) for k, v in f["coords"].attrs.items()}
    except OSError as err:
        raise FeaturesFileError(f"{path} is not a readable HDF5 file ({err}); delete it and re-run "
                                "feature extraction") from None
    if len(feats) != len(coords):
        raise FeaturesFileError(f"{path}: {len(feats)} feature rows but {len(coords)} coords; "
                                "delete it and re-run feature extraction")
    return feats, coords, attrs
