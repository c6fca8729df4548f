"""Where and how to read a patch: pyramid level, JPEG DCT scale, reading order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A level counts as "fine enough" when its downsample exceeds the needed one by < 1 %
# (pyramids written as 4x often report 4.0004x after integer division of the size).
_LEVEL_SLACK = 1.01


@dataclass(frozen=True)
class ReadPlan:
    level: int
    level_downsample: float  # level-0 px per level px
    dct_scale: int  # decode at dct_scale/8 of the level's resolution (8 = full size)

    @property
    def downsample(self) -> float:
        """Level-0 px per decoded px."""
        return self.level_downsample * 8.0 / self.dct_scale


def best_level(downsamples: list[float], needed: float) -> int:
    """Coarsest level whose downsample does not exceed ``needed`` (OpenSlide's rule)."""
    ok = [i for i, d in enumerate(downsamples) if d <= needed * _LEVEL_SLACK]
    return max(ok, key=lambda i: downsamples[i]) if ok else 0


def plan_read(downsamples: list[float], size_level0: float, out_size: int,
              dct_scaling: bool = True) -> ReadPlan:
    """Pick the level and the smallest DCT scale M/8 that still gives >= ``out_size`` px.

    The final resize then only shrinks by less than 8/(M-1)/(8/M) ~ a few %, so patches match
    a full-resolution read resized to ``out_size`` within JPEG/resampling tolerance.
    """
    needed = size_level0 / out_size
    level = best_level(downsamples, needed)
    ds = downsamples[level]
    m = 8
    if dct_scaling:
        residual = needed / ds  # >= ~1
        m = int(min(8, max(1, math.ceil(8.0 / max(residual, 1e-9) - 1e-9))))
    return ReadPlan(level, ds, m)


def reading_order(coords: np.ndarray, band: int | None = None) -> np.ndarray:
    """Row-major (y, then x) order of patches so neighbouring reads share decoded tiles."""
    coords = np.asarray(coords).reshape(-1, 2)
    if len(coords) == 0:
        return np.zeros(0, np.int64)
    y = coords[:, 1] if band is None else coords[:, 1] // band
    return np.lexsort((coords[:, 0], y)).astype(np.int64)
