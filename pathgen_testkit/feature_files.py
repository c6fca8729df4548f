"""Coordinates and features HDF5 files for tests, written by pathgen's own writers
(`pathgen.tiling.h5io.write_coords`, `pathgen.features.h5io.write_features`), so a test's
input follows docs/architecture.md "Coordinates HDF5" / "Features HDF5" exactly: every
attribute the contract names, not only the ones a reader happens to use today.

The geometry is given as the tiling stage records it: ``patch_size`` px at the target mpp and
``patch_size_level0`` px at level 0 (the slide's ``mpp``); the target mpp follows from the two.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pathgen.features.h5io import root_attrs, write_features
from pathgen.tiling.h5io import coords_attrs, write_coords


def coords_attrs_for(name: str, save_dir: str | os.PathLike, coords, patch_size: int = 64,
                     patch_size_level0: int = 128, mpp: float = 0.5,
                     level0_dims: tuple[int, int] | None = None, mpp_source: str = "test",
                     **extra: Any) -> dict[str, Any]:
    """The full coords attribute set (`coords_attrs`) for patches of `patch_size_level0` level-0
    px shown at `patch_size` px; the slide extent defaults to the patches' bounding box."""
    xy = np.asarray(coords, np.int64).reshape(-1, 2)
    if level0_dims is None:
        far = xy.max(0) + patch_size_level0 if len(xy) else np.array([patch_size_level0] * 2)
        level0_dims = (int(far[0]), int(far[1]))
    target_mpp = mpp * patch_size_level0 / patch_size
    return coords_attrs(name=name, save_dir=save_dir, mpp=mpp, mpp_source=mpp_source,
                        target_mpp=target_mpp, patch_size_um=patch_size * target_mpp,
                        patch_size=patch_size, patch_size_level0=patch_size_level0,
                        level0_dims=level0_dims, extra=extra or None)


def write_coords_file(path: str | os.PathLike, coords, patch_size: int = 64,
                      patch_size_level0: int = 128, mpp: float = 0.5,
                      level0_dims: tuple[int, int] | None = None) -> Path:
    """A coords HDF5 as the tiling stage writes it (N = 0 allowed)."""
    path = Path(path)
    attrs = coords_attrs_for(path.stem, path.parent, coords, patch_size, patch_size_level0, mpp,
                             level0_dims)
    return write_coords(path, np.asarray(coords, np.int64).reshape(-1, 2), attrs)


def write_features_file(path: str | os.PathLike, features, coords, patch_size: int = 64,
                        patch_size_level0: int = 128, encoder: str = "test", dtype: str = "float32",
                        mpp: float = 0.5, level0_dims: tuple[int, int] | None = None) -> Path:
    """A features HDF5 as the features stage writes it: `features` (N, D) in `dtype`, `coords`
    (N, 2) with the coords attributes, the root attributes (N = 0 allowed: pass (0, D))."""
    path = Path(path)
    feats = np.asarray(features, np.float32)
    feats = feats.reshape(len(feats), -1) if feats.ndim != 2 else feats
    xy = np.asarray(coords, np.int64).reshape(-1, 2)
    cattrs = coords_attrs_for(path.stem, path.parent, xy, patch_size, patch_size_level0, mpp,
                              level0_dims)
    return write_features(path, feats, xy, cattrs,
                          root_attrs(encoder, "none", "{}", dtype, feats.shape[1]))
