"""QC picture of one slide: thumbnail + tissue outline (green), holes (blue), kept patches."""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import Image

from ..atomic import atomic_path
from .segment import TissueMask, choose_level, read_downsampled

TISSUE_RGB = (0, 200, 0)
HOLE_RGB = (0, 90, 255)
PATCH_RGB = (230, 20, 20)


def qc_thumbnail(slide, path, mpp: float, max_px: int) -> np.ndarray:
    """RGB thumbnail with long side <= ``max_px``, read block-wise from a suitable level."""
    w0, h0 = slide.level_dimensions[0]
    f = max(1.0, max(w0, h0) / max_px)  # level-0 px per thumbnail px
    # a level up to 1.5x coarser than the picture is fine: avoids decoding a 4x finer level
    level = choose_level(slide.level_downsamples, mpp, mpp * f, tolerance=1.5)
    return read_downsampled(slide, path, level, (max(1, round(w0 / f)), max(1, round(h0 / f))))


def render_qc(tissue: TissueMask, coords: np.ndarray, patch_size_level0: int,
              level0_dims: tuple[int, int], max_px: int = 2048,
              thumbnail: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 QC image no larger than ``max_px`` on its long side.

    ``thumbnail`` defaults to the segmentation image (coarse but free).
    """
    img = tissue.thumbnail if thumbnail is None else thumbnail
    h, w = img.shape[:2]
    f = min(1.0, max_px / max(h, w))
    if f < 1.0:
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray(img.copy())
    qh, qw = img.shape[:2]
    sx, sy = qw / level0_dims[0], qh / level0_dims[1]  # QC px per level-0 px
    thick = max(1, round(max(qh, qw) / 700))

    def ring(pts: np.ndarray) -> np.ndarray:
        return np.round(pts * [sx, sy]).astype(np.int32).reshape(-1, 1, 2)

    for x, y in coords:
        p0 = (int(x * sx), int(y * sy))
        p1 = (int((x + patch_size_level0) * sx), int((y + patch_size_level0) * sy))
        cv2.rectangle(img, p0, p1, PATCH_RGB, 1)
    for region in tissue.regions:
        cv2.polylines(img, [ring(region.outer)], True, TISSUE_RGB, thick)
        if region.holes:
            cv2.polylines(img, [ring(hole) for hole in region.holes], True, HOLE_RGB, thick)
    return img


def write_qc(path: str | os.PathLike, image: np.ndarray, quality: int = 85) -> None:
    with atomic_path(path, suffix=".jpg") as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)
