"""Fallback patch reader for any OpenSlide format: one read_region per run of neighbouring
patches (a larger aligned region at the best level), sliced into patches and resampled."""

from __future__ import annotations

import math
import os

import numpy as np

from .base import RESAMPLE_DOC, PatchReader, margin_for, resample
from .plan import ReadPlan, plan_read

MAX_REGION_PX = 4096  # widest region read at once (level px); bounds memory per read


class OpenSlideRegionReader(PatchReader):
    name = "openslide-regions"

    def __init__(self, path: str | os.PathLike, max_region_px: int = MAX_REGION_PX):
        from .slide import open_slide

        self.path = str(path)
        self._slide = open_slide(self.path, probe=False)
        self.level_dimensions = list(self._slide.level_dimensions)
        self.level_downsamples = [float(d) for d in self._slide.level_downsamples]
        self.max_region_px = max_region_px

    def close(self) -> None:
        self._slide.close()

    def plan(self, size_level0: float, out_size: int) -> ReadPlan:
        return plan_read(self.level_downsamples, size_level0, out_size, dct_scaling=False)

    def describe(self, size_level0: float, out_size: int) -> dict:
        p = self.plan(size_level0, out_size)
        return {"reader": self.name, "level": p.level, "level_downsample": p.level_downsample,
                "resample": RESAMPLE_DOC, "patch_size_level0": size_level0,
                "out_size": out_size}

    def _runs(self, coords: np.ndarray, size0: float, ds: float) -> list[list[int]]:
        """Group patches on the same row whose regions overlap or touch, up to a width cap."""
        runs: list[list[int]] = []
        for i, (x, y) in enumerate(coords):
            if runs:
                j0, j = runs[-1][0], runs[-1][-1]
                same_row = coords[j, 1] == y
                touching = 0 <= x - coords[j, 0] <= size0
                narrow = (x + size0 - coords[j0, 0]) / ds <= self.max_region_px
                if same_row and touching and narrow:
                    runs[-1].append(i)
                    continue
            runs.append([i])
        return runs

    def read_patches(self, coords: np.ndarray, size_level0: float, out_size: int) -> np.ndarray:
        from .slide import read_rgb

        coords = np.asarray(coords, np.int64).reshape(-1, 2)
        plan = self.plan(size_level0, out_size)
        ds = plan.level_downsample
        out = np.empty((len(coords), out_size, out_size, 3), np.uint8)
        for run in self._runs(coords, size_level0, ds):
            xs, y = coords[run, 0], int(coords[run[0], 1])
            m = margin_for(size_level0 / ds, out_size)
            lx0 = math.floor(xs.min() / ds) - m
            ly0 = math.floor(y / ds) - m
            lx1 = math.ceil((xs.max() + size_level0) / ds) + m
            ly1 = math.ceil((y + size_level0) / ds) + m
            loc = (int(round(lx0 * ds)), int(round(ly0 * ds)))
            buf = read_rgb(self._slide, self.path, loc, plan.level, (lx1 - lx0, ly1 - ly0))
            ox, oy = loc[0] / ds, loc[1] / ds  # buffer origin in level px
            for i in run:
                x = coords[i, 0]
                box = (x / ds - ox, y / ds - oy, (x + size_level0) / ds - ox,
                       (y + size_level0) / ds - oy)
                out[i] = resample(buf, box, out_size)
        return out
