"""What a coords file's attributes mean to CLAM and to TRIDENT, and where the two disagree.

Both peers read ``coords`` (N, 2), level-0 top-left corners, and an attribute ``patch_size``,
but they cut different pixels with it (their documented contracts, see docs/tiling.md):

- CLAM (create_patches / extract_features): ``patch_size`` px read at pyramid level
  ``patch_level`` (OpenSlide ``read_region(coord, patch_level, (patch_size, patch_size))``),
  then resized to the encoder's input;
- TRIDENT: ``patch_size`` px at ``target_magnification``; it reads ``patch_size_level0`` px at
  level 0 and resizes them to ``patch_size``.

One file satisfies both only when a pyramid level (or level 0) sits at the target
resolution. pathgen's own readers always use ``patch_size_level0``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("pathgen.export.conventions")  # the name its warnings have always carried

TOLERANCE = 0.002  # relative level-0 field error still counted as the same field


@dataclass(frozen=True)
class ClamGeometry:
    """Where a CLAM reader should read one patch: ``patch_size`` px at pyramid ``level``."""

    level: int
    patch_size: int
    downsample: float
    dims: tuple[int, int]


def same_field(a: float, b: float) -> bool:
    """Two level-0 extents cover the same field (within a pixel or ``TOLERANCE``)."""
    return abs(float(a) - float(b)) <= max(1.0, TOLERANCE * float(b))


def clam_geometry(size0: int, target_px: int, downsamples: Sequence[float],
                  dims: Sequence[Sequence[int]]) -> ClamGeometry:
    """The coarsest level whose downsample divides ``size0`` and that still gives at least
    ``target_px`` px (CLAM's reader must not upsample more than pathgen's); else level 0 with
    ``size0`` px, which is always the same field."""
    best = ClamGeometry(0, int(size0), 1.0, (int(dims[0][0]), int(dims[0][1])))
    for level, ds in enumerate(downsamples):
        px = int(round(size0 / float(ds)))
        if px >= target_px and same_field(px * float(ds), size0) and float(ds) > best.downsample:
            best = ClamGeometry(level, px, float(ds), (int(dims[level][0]), int(dims[level][1])))
    return best


def level_downsample(attrs: dict[str, Any]) -> float:
    """The real downsample of ``patch_level`` (from pathgen's pyramid record, else CLAM's
    ``downsample``, which CLAM sets to the level's downsample)."""
    level = int(attrs.get("patch_level", 0))
    pyramid = attrs.get("pyramid_downsamples")
    if pyramid is not None and level < len(np.atleast_1d(pyramid)):
        return float(np.atleast_1d(pyramid)[level])
    if level == 0:
        return 1.0
    return float(np.atleast_1d(attrs.get("downsample", [1.0]))[0])


def readings(attrs: dict[str, Any]) -> dict[str, float]:
    """Level-0 px side of the field each reader cuts from this file (readers that lack
    the attributes they need are left out)."""
    out: dict[str, float] = {}
    if "patch_size_level0" in attrs:
        out["pathgen"] = float(attrs["patch_size_level0"])
    if "patch_size" in attrs and "patch_level" in attrs:
        out["CLAM"] = float(attrs["patch_size"]) * level_downsample(attrs)
    if {"patch_size", "target_magnification", "level0_magnification"} <= attrs.keys():
        out["TRIDENT"] = (float(attrs["patch_size"]) * float(attrs["level0_magnification"])
                          / float(attrs["target_magnification"]))
    return out


def _um(px: float, attrs: dict[str, Any]) -> str:
    mpp = attrs.get("mpp")
    return f"{px * float(mpp):.1f} µm" if mpp else f"{px:.0f} level-0 px"


def convention_conflicts(attrs: dict[str, Any]) -> list[str]:
    """One sentence per peer whose reading of these attributes differs from the patch pathgen
    cuts (``patch_size_level0``); empty when CLAM, TRIDENT and pathgen cut the same field."""
    seen = readings(attrs)
    truth = seen.get("pathgen", seen.get("TRIDENT"))
    if truth is None:
        return []
    msgs = []
    clam = seen.get("CLAM")
    if clam is not None and not same_field(clam, truth):
        msgs.append(f"CLAM reads patch_size={attrs['patch_size']} px at patch_level="
                    f"{attrs['patch_level']} = {_um(clam, attrs)}, not the {_um(truth, attrs)} "
                    "patch (patch_size here is px at target magnification, TRIDENT's meaning); "
                    "for CLAM use `pathgen export clam`")
    trident = seen.get("TRIDENT")
    if trident is not None and not same_field(trident, truth):
        msgs.append(f"TRIDENT reads patch_size={attrs['patch_size']} px at target_magnification="
                    f"{attrs['target_magnification']:g}x = {_um(trident, attrs)}, not the "
                    f"{_um(truth, attrs)} patch; for TRIDENT use `pathgen export trident`")
    return msgs


def warn_conflicts(path, attrs: dict[str, Any], logger: logging.Logger = log) -> list[str]:
    """Log each conflict of the coords attributes in ``path`` as a warning; return them."""
    msgs = convention_conflicts(attrs)
    for msg in msgs:
        logger.warning("%s: %s", path, msg)
    return msgs
