"""Patch-coordinate HDF5 files readable by CLAM and TRIDENT tooling (their formats, our code).

Layout: dataset ``coords`` (N, 2) int64, level-0 top-left (x, y), chunked in blocks of up
to 4096 rows (CLAM's one-row chunks make bulk reads slow). Attributes on ``coords``:
CLAM ``patch_size patch_level downsample downsampled_level_dim level_dim name save_path``,
TRIDENT ``patch_size patch_size_level0 level0_magnification target_magnification overlap
level0_width level0_height name savetodir``, plus ``mpp mpp_source patch_size_um target_mpp
pathgen_version``. ``patch_size`` is px at ``target_mpp``; read ``patch_size_level0`` px at
level 0 and resize to ``patch_size`` to get the patch (TRIDENT's convention). CLAM reads
``patch_size`` px at ``patch_level``: when a pyramid level sits at ``target_mpp`` that level
is named, so both peers cut the same field; otherwise they cannot agree in one file
(``clam_compatible = 0``, warned at tiling; ``pathgen export clam`` writes CLAM's meaning).
The slide's pyramid is recorded (``pyramid_downsamples``, ``pyramid_dims``) for that export.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..atomic import atomic_path
from ..h5attrs import plain as _plain
from .conventions import clam_geometry, readings, same_field

CHUNK_ROWS = 4096
CLAM_ATTRS = ("patch_size", "patch_level", "downsample", "downsampled_level_dim", "level_dim",
              "name", "save_path")
TRIDENT_ATTRS = ("patch_size", "patch_size_level0", "level0_magnification", "target_magnification",
                 "overlap", "level0_width", "level0_height", "name", "savetodir")
PATHGEN_ATTRS = ("mpp", "mpp_source", "patch_size_um", "target_mpp", "pathgen_version")
REQUIRED_ATTRS = tuple(dict.fromkeys(CLAM_ATTRS + TRIDENT_ATTRS + PATHGEN_ATTRS))


class CoordsFileError(ValueError):
    """A coords HDF5 is missing, unreadable or does not follow the contract."""


def coords_attrs(*, name: str, save_dir: str | os.PathLike, mpp: float, mpp_source: str,
                 target_mpp: float, patch_size_um: float, patch_size: int, patch_size_level0: int,
                 level0_dims: tuple[int, int], extra: dict[str, Any] | None = None,
                 level_downsamples: list[float] | None = None,
                 level_dims: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The full CLAM + TRIDENT + pathgen attribute set for one slide.

    ``level_downsamples`` / ``level_dims``: the slide's pyramid (OpenSlide's), recorded so
    CLAM's ``patch_level`` can name a real level at ``target_mpp`` when there is one."""
    from .. import __version__

    w, h = int(level0_dims[0]), int(level0_dims[1])
    down = target_mpp / mpp  # level-0 px per target px: a virtual level at target_mpp
    attrs: dict[str, Any] = {
        # CLAM (patch_level 0 + virtual downsample unless a real level matches, below)
        "patch_size": int(patch_size),
        "patch_level": 0,
        "downsample": np.array([down, down], np.float64),
        "downsampled_level_dim": np.array([int(round(w / down)), int(round(h / down))], np.int64),
        "level_dim": np.array([w, h], np.int64),
        "name": str(name),
        "save_path": str(save_dir),
        # TRIDENT
        "patch_size_level0": int(patch_size_level0),
        "level0_magnification": float(10.0 / mpp),
        "target_magnification": float(10.0 / target_mpp),
        "overlap": 0,
        "level0_width": w,
        "level0_height": h,
        "savetodir": str(save_dir),
        # pathgen
        "mpp": float(mpp),
        "mpp_source": str(mpp_source),
        "patch_size_um": float(patch_size_um),
        "target_mpp": float(target_mpp),
        "pathgen_version": __version__,
    }
    if level_downsamples:
        attrs.update(_pyramid_attrs(level_downsamples, level_dims or [level0_dims], patch_size_level0,
                                    patch_size))
    attrs["clam_compatible"] = int(same_field(readings(attrs)["CLAM"], patch_size_level0))
    attrs.update(extra or {})
    return attrs


def _pyramid_attrs(downsamples, dims, size0: int, patch_size: int) -> dict[str, Any]:
    """Pyramid record, plus CLAM's level attributes when a level holds the patch at exactly
    ``patch_size`` px (then CLAM's and TRIDENT's ``patch_size`` are the same number)."""
    out: dict[str, Any] = {"pyramid_downsamples": np.asarray(downsamples, np.float64),
                           "pyramid_dims": np.asarray(dims, np.int64).reshape(-1, 2)}
    geo = clam_geometry(size0, patch_size, downsamples, dims)
    if geo.patch_size == patch_size and geo.level > 0:
        out.update({"patch_level": geo.level, "downsample": np.array([geo.downsample] * 2, np.float64),
                    "downsampled_level_dim": np.array(geo.dims, np.int64),
                    "level_dim": np.array(geo.dims, np.int64)})
    return out


def write_coords(path: str | os.PathLike, coords: np.ndarray, attrs: dict[str, Any]) -> Path:
    """Atomically write ``coords`` (N, 2) with ``attrs`` on the dataset. N = 0 is valid."""
    coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
    missing = [k for k in REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise ValueError(f"coords attributes missing {missing} (build them with coords_attrs)")
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            rows = max(1, min(len(coords), CHUNK_ROWS))
            ds = f.create_dataset("coords", data=coords, maxshape=(None, 2), chunks=(rows, 2))
            for key, value in attrs.items():
                ds.attrs[key] = value
    return path


def read_coords(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Return (coords (N, 2) int64, attrs dict) and check the contract."""
    path = Path(path)
    if not path.exists():
        raise CoordsFileError(f"coords file {path} does not exist; run `pathgen tile` for this slide")
    try:
        with h5py.File(path, "r") as f:
            if "coords" not in f:
                raise CoordsFileError(f"{path} has no 'coords' dataset (not a pathgen/CLAM/TRIDENT "
                                      "coords file?)")
            ds = f["coords"]
            coords = ds[()].astype(np.int64).reshape(-1, 2)
            attrs = {k: _plain(v) for k, v in ds.attrs.items()}
    except OSError as err:
        raise CoordsFileError(f"{path} is not a readable HDF5 file ({err}); delete it and re-run "
                              "tiling") from None
    for key in ("patch_size", "patch_size_level0"):
        if key not in attrs:
            raise CoordsFileError(f"{path}: coords attribute '{key}' missing; re-run tiling")
    return coords, attrs
