"""`pathgen export clam`: coords with CLAM's meaning and CLAM's feature folder layout.

CLAM's contract (create_patches / extract_features / its MIL dataset): ``patches/<slide>.h5``
holds ``coords`` whose ``patch_size`` px are read at ``patch_level``; ``h5_files/<slide>.h5``
holds ``features`` (N, D) + ``coords``; ``pt_files/<slide>.pt`` holds the (N, D) tensor that
its MIL loader reads by default. The level is the coarsest pyramid level whose downsample
divides the patch's level-0 size without dropping below the target resolution; with none,
level 0 and ``patch_size_level0`` (CLAM then resizes to ``target_patch_size``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..tiling.conventions import ClamGeometry, clam_geometry, convention_conflicts
from .files import clam_export_files
from .sources import SlideSource, collect, write_h5

log = logging.getLogger(__name__)

# TRIDENT keys whose meaning rests on patch_size being px at the target: dropped, so a
# TRIDENT reader given a CLAM file fails on a missing key instead of cutting a wrong field.
TRIDENT_ONLY = ("target_magnification",)


def geometry_for(src: SlideSource) -> ClamGeometry:
    """CLAM's read geometry for one slide (level 0 when the file has no pyramid record)."""
    a = src.coords_attrs
    size0, target_px = int(a["patch_size_level0"]), int(a["patch_size"])
    if "pyramid_downsamples" not in a:
        log.warning("%s: no pyramid recorded (tiled by an older pathgen); CLAM will read "
                    "%d px at level 0 (re-tile to let it use a pyramid level)", src.coords_path, size0)
        dims = (int(a["level0_width"]), int(a["level0_height"]))
        return ClamGeometry(0, size0, 1.0, dims)
    geo = clam_geometry(size0, target_px, np.atleast_1d(a["pyramid_downsamples"]),
                        np.asarray(a["pyramid_dims"]).reshape(-1, 2))
    if geo.level == 0 and size0 != target_px:
        log.info("%s: no pyramid level holds the %d px patch at >= %d px; CLAM reads %d px at "
                 "level 0 and resizes to target_patch_size=%d", src.slide_id, size0, target_px, size0,
                 target_px)
    return geo


def clam_attrs(src: SlideSource, geo: ClamGeometry, save_dir: Path) -> dict[str, Any]:
    """The coords attributes with CLAM's meaning (pathgen provenance kept)."""
    attrs = {k: v for k, v in src.coords_attrs.items() if k not in TRIDENT_ONLY}
    attrs.update({"patch_size": geo.patch_size, "patch_level": geo.level,
                  "downsample": np.array([geo.downsample] * 2, np.float64),
                  "downsampled_level_dim": np.array(geo.dims, np.int64),
                  "level_dim": np.array(geo.dims, np.int64), "save_path": str(save_dir),
                  "target_patch_size": int(src.coords_attrs["patch_size"]), "clam_compatible": 1})
    left = convention_conflicts(attrs)
    if left:  # cannot happen by construction; a wrong file must never be written silently
        raise AssertionError(f"{src.slide_id}: CLAM export still disagrees: {left}")
    return attrs


def _save_pt(path: Path, features: np.ndarray) -> None:
    import torch

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(torch.from_numpy(np.ascontiguousarray(features)), tmp)


def export_slide(src: SlideSource, out_dir: Path) -> dict[str, Any]:
    files = clam_export_files(out_dir, src.slide_id)
    geo = geometry_for(src)
    attrs = clam_attrs(src, geo, files["coords"].parent)
    write_h5(files["coords"], {"coords": (src.coords, attrs)})
    row = {"slide_id": src.slide_id, "n": len(src.coords), "patch_level": geo.level,
           "patch_size": geo.patch_size, "coords": files["coords"]}
    if src.features is not None:
        feats = src.features.astype(np.float32)  # CLAM's models run in float32
        write_h5(files["h5"], {"features": (feats, {}), "coords": (src.coords, attrs)}, src.root_attrs)
        _save_pt(files["pt"], feats)
        row.update(h5=files["h5"], pt=files["pt"], dim=feats.shape[1])
    return row


def export_clam(out_dir: str | os.PathLike, coords: str | os.PathLike | None = None,
                features: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Write CLAM's layout under ``out_dir`` for every slide given; one summary row each."""
    return [export_slide(src, Path(out_dir)) for src in collect(coords, features)]
