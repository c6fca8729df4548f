"""Patch grid math (pure numpy, no I/O): candidate cells, tissue fractions, edge rules.

The grid is one regular, non-overlapping lattice at level 0 with step = patch side, so
patches of different tissue pieces can never overlap (per-piece grids, as in CLAM, can).
"""

from __future__ import annotations

import math
from typing import Iterable, Literal

import numpy as np


def patch_size_level0(patch_size_um: float, mpp: float) -> int:
    """Patch side in level-0 px for a physical size (at least 1 px)."""
    return max(1, int(round(patch_size_um / mpp)))


def grid_origin(bboxes: list[tuple[float, float, float, float]],
                anchor: Literal["tissue", "slide"]) -> tuple[int, int]:
    """Lattice origin: (0, 0) for 'slide'; top-left of all tissue for 'tissue'."""
    if anchor == "slide" or not bboxes:
        return 0, 0
    return (max(0, int(math.floor(min(b[0] for b in bboxes)))),
            max(0, int(math.floor(min(b[1] for b in bboxes)))))


def candidate_cells(bboxes: Iterable[tuple[float, float, float, float]], origin: tuple[int, int],
                    step: int, dims: tuple[int, int]) -> np.ndarray:
    """Top-left (x, y) of lattice cells touching any bbox and lying fully inside the slide."""
    w, h = dims
    ox, oy = origin
    # last cell index that still fits inside the slide
    imax, jmax = (w - ox) // step - 1, (h - oy) // step - 1
    if imax < 0 or jmax < 0:
        return np.zeros((0, 2), np.int64)
    cells = []
    for x0, y0, x1, y1 in bboxes:
        i0 = max(0, int(math.floor((x0 - ox) / step)))
        j0 = max(0, int(math.floor((y0 - oy) / step)))
        i1 = min(imax, int(math.ceil((x1 - ox) / step)) - 1)
        j1 = min(jmax, int(math.ceil((y1 - oy) / step)) - 1)
        if i1 < i0 or j1 < j0:
            continue
        ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1))
        cells.append(np.stack([ii.ravel(), jj.ravel()], axis=1))
    if not cells:
        return np.zeros((0, 2), np.int64)
    idx = np.unique(np.concatenate(cells), axis=0)
    xy = idx * step + np.array([ox, oy])
    order = np.lexsort((xy[:, 0], xy[:, 1]))  # row-major: by y, then x
    return xy[order].astype(np.int64)


def integral_image(mask: np.ndarray) -> np.ndarray:
    """(h+1, w+1) float64 summed-area table of a 0/1 mask."""
    ii = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.float64)
    ii[1:, 1:] = np.cumsum(np.cumsum(mask.astype(np.float64), axis=0), axis=1)
    return ii


def _area_at(ii: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask area in [0, x) x [0, y) for fractional mask coordinates.

    The mask is piecewise constant, so this area is bilinear inside each pixel: bilinear
    interpolation of the summed-area table is exact, not an approximation.
    """
    h, w = ii.shape[0] - 1, ii.shape[1] - 1
    x = np.clip(x, 0, w)
    y = np.clip(y, 0, h)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 1) if w else np.zeros_like(x, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 1) if h else np.zeros_like(y, np.int64)
    tx, ty = x - x0, y - y0
    return (ii[y0, x0] * (1 - tx) * (1 - ty) + ii[y0, x0 + 1] * tx * (1 - ty)
            + ii[y0 + 1, x0] * (1 - tx) * ty + ii[y0 + 1, x0 + 1] * tx * ty)


def tissue_fractions(mask: np.ndarray, scale: tuple[float, float], coords: np.ndarray,
                     size: int) -> np.ndarray:
    """Exact area fraction of tissue under each level-0 square patch (holes count as 0)."""
    if len(coords) == 0:
        return np.zeros(0)
    ii = integral_image(mask)
    fx, fy = scale
    x0 = coords[:, 0] / fx
    y0 = coords[:, 1] / fy
    x1 = (coords[:, 0] + size) / fx
    y1 = (coords[:, 1] + size) / fy
    area = _area_at(ii, x1, y1) - _area_at(ii, x0, y1) - _area_at(ii, x1, y0) + _area_at(ii, x0, y0)
    return np.clip(area / ((x1 - x0) * (y1 - y0)), 0.0, 1.0)


def select_patches(mask: np.ndarray, scale: tuple[float, float],
                   bboxes: list[tuple[float, float, float, float]], dims: tuple[int, int],
                   size: int, tissue_threshold: float,
                   anchor: Literal["tissue", "slide"] = "tissue") -> tuple[np.ndarray, np.ndarray]:
    """Return (coords (N, 2) int64, tissue fractions (N,)) of kept patches, row-major."""
    cells = candidate_cells(bboxes, grid_origin(bboxes, anchor), size, dims)
    frac = tissue_fractions(mask, scale, cells, size)
    keep = frac >= tissue_threshold - 1e-9
    return cells[keep], frac[keep]
