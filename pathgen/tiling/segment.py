"""Tissue segmentation on a low-resolution level (the classic CLAM-style recipe, own code).

HSV saturation -> median blur -> Otsu (floored) or fixed threshold -> morphological closing
-> small holes filled / small tissue pieces dropped (areas in µm², so a setting means the
same on every scanner) -> contours with holes. Only a level at or finer than ``seg_mpp`` is
read, block by block, and resized down: level 0 of a pyramidal slide is never read.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..config.tiling import SegmentationConfig
from ..wsi import read_rgb

log = logging.getLogger(__name__)

# Largest block (level px per side) read at once: bounds peak memory on single-level slides.
READ_BLOCK_PX = 4096


@dataclass
class TissueRegion:
    """One tissue piece: outer ring and hole rings as (K, 2) float arrays in level-0 px."""

    outer: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)
    area_um2: float = 0.0

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in level-0 px."""
        return (float(self.outer[:, 0].min()), float(self.outer[:, 1].min()),
                float(self.outer[:, 0].max()), float(self.outer[:, 1].max()))


@dataclass
class TissueMask:
    mask: np.ndarray          # (h, w) uint8 0/1, holes excluded
    thumbnail: np.ndarray     # (h, w, 3) uint8 RGB at the same scale
    scale: tuple[float, float]  # level-0 px per mask px, (x, y)
    seg_mpp: float            # µm per mask px actually used
    level: int                # pyramid level that was read
    threshold: int            # saturation threshold actually applied
    regions: list[TissueRegion]

    @property
    def tissue_area_um2(self) -> float:
        return float(self.mask.sum()) * self.seg_mpp ** 2

    def region_bboxes(self) -> list[tuple[float, float, float, float]]:
        """Level-0 bounding boxes of tissue, from mask pixel edges (not pixel centres)."""
        fx, fy = self.scale
        out = []
        for r in self.regions:
            x0, y0, x1, y1 = r.bbox()
            # ring points are pixel centres; widen by half a mask pixel to the pixel edges
            out.append((x0 - fx / 2, y0 - fy / 2, x1 + fx / 2, y1 + fy / 2))
        return out


def choose_level(level_downsamples, mpp: float, seg_mpp: float, tolerance: float = 1.001) -> int:
    """Coarsest level whose resolution is at or finer than ``seg_mpp`` (level 0 if none).

    ``tolerance`` > 1 accepts a level slightly coarser than asked (fine for pictures).
    """
    best = 0
    for i, ds in enumerate(level_downsamples):
        if mpp * ds <= seg_mpp * tolerance and ds >= level_downsamples[best]:
            best = i
    return best


def read_downsampled(slide, path, level: int, out_size: tuple[int, int]) -> np.ndarray:
    """Read ``level`` in blocks and area-resize it to ``out_size`` (w, h) RGB."""
    lw, lh = slide.level_dimensions[level]
    ow, oh = out_size
    ds = slide.level_downsamples[level]
    sx, sy = lw / ow, lh / oh  # level px per output px (>= 1 by construction)
    out = np.empty((oh, ow, 3), np.uint8)
    bw = max(1, int(READ_BLOCK_PX // sx))
    bh = max(1, int(READ_BLOCK_PX // sy))
    for oy0 in range(0, oh, bh):
        oy1 = min(oh, oy0 + bh)
        ly0, ly1 = int(math.floor(oy0 * sy)), min(lh, int(math.ceil(oy1 * sy)))
        for ox0 in range(0, ow, bw):
            ox1 = min(ow, ox0 + bw)
            lx0, lx1 = int(math.floor(ox0 * sx)), min(lw, int(math.ceil(ox1 * sx)))
            block = read_rgb(slide, path, (int(lx0 * ds), int(ly0 * ds)), level,
                             (max(1, lx1 - lx0), max(1, ly1 - ly0)))
            if block.shape[:2] != (oy1 - oy0, ox1 - ox0):
                block = cv2.resize(block, (ox1 - ox0, oy1 - oy0), interpolation=cv2.INTER_AREA)
            out[oy0:oy1, ox0:ox1] = block
    return out


def _odd(n: float) -> int:
    k = int(round(n))
    return k + 1 if k % 2 == 0 else k


def _fill_small_holes(mask: np.ndarray, min_px: float) -> np.ndarray:
    """Fill background components not touching the border that are smaller than ``min_px``."""
    inv = (1 - mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    h, w = mask.shape
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
    small = np.zeros(n, bool)
    for i in range(1, n):
        if i not in border and stats[i, cv2.CC_STAT_AREA] < min_px:
            small[i] = True
    out = mask.copy()
    out[small[labels]] = 1
    return out


def _drop_small_tissue(mask: np.ndarray, min_px: float) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False
    return keep[labels].astype(np.uint8)


def mask_from_rgb(rgb: np.ndarray, seg_mpp: float, cfg: SegmentationConfig) -> tuple[np.ndarray, int]:
    """Binary tissue mask (uint8 0/1, holes excluded) of an RGB image at ``seg_mpp`` µm/px."""
    sat = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1]
    k = _odd(cfg.median_blur_um / seg_mpp)
    if k >= 3:
        sat = cv2.medianBlur(sat, k)
    if cfg.saturation_threshold == "otsu":
        otsu, _ = cv2.threshold(sat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        thr = max(int(otsu), cfg.min_saturation)
    else:
        thr = int(cfg.saturation_threshold)
    mask = (sat > thr).astype(np.uint8)
    c = int(round(cfg.close_um / seg_mpp))
    if c >= 2:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (c, c))
        # pad so closing does not glue tissue to the image border
        pad = c
        padded = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        mask = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[pad:-pad, pad:-pad]
    px_area = seg_mpp * seg_mpp
    mask = _fill_small_holes(mask, cfg.min_hole_area_um2 / px_area)
    mask = _drop_small_tissue(mask, cfg.min_tissue_area_um2 / px_area)
    return mask, thr


def regions_from_mask(mask: np.ndarray, scale: tuple[float, float], seg_mpp: float) -> list[TissueRegion]:
    """Outer contours with their holes, converted to level-0 px (pixel centres)."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hier = hierarchy[0]
    fx, fy = scale

    def to_l0(c: np.ndarray) -> np.ndarray:
        pts = c.reshape(-1, 2).astype(np.float64)
        return np.stack([(pts[:, 0] + 0.5) * fx, (pts[:, 1] + 0.5) * fy], axis=1)

    regions = []
    for i, c in enumerate(contours):
        if hier[i][3] != -1:
            continue
        holes = []
        child = hier[i][2]
        while child != -1:
            holes.append(to_l0(contours[child]))
            child = hier[child][0]
        x, y, w, h = cv2.boundingRect(c)
        sub = np.zeros((h, w), np.uint8)
        cv2.drawContours(sub, [c - [x, y]], -1, 1, thickness=-1)
        area_px = int((sub & mask[y:y + h, x:x + w]).sum())
        regions.append(TissueRegion(to_l0(c), holes, area_px * seg_mpp * seg_mpp))
    return regions


def segment_tissue(slide, path, mpp: float, cfg: SegmentationConfig) -> TissueMask:
    """Segment tissue of an open slide whose level-0 resolution is ``mpp`` µm/px."""
    w0, h0 = slide.level_dimensions[0]
    seg_mpp = max(cfg.seg_mpp, mpp)  # never upsample a coarse slide
    level = choose_level(slide.level_downsamples, mpp, seg_mpp)
    ow = max(1, int(round(w0 * mpp / seg_mpp)))
    oh = max(1, int(round(h0 * mpp / seg_mpp)))
    rgb = read_downsampled(slide, path, level, (ow, oh))
    scale = (w0 / ow, h0 / oh)
    eff_mpp = mpp * (scale[0] + scale[1]) / 2
    mask, thr = mask_from_rgb(rgb, eff_mpp, cfg)
    regions = regions_from_mask(mask, scale, eff_mpp)
    log.info("segmented %s at level %d -> %dx%d mask (%.2f µm/px), threshold %d, %d tissue regions",
             path, level, ow, oh, eff_mpp, thr, len(regions))
    return TissueMask(mask, rgb, scale, eff_mpp, level, thr, regions)
