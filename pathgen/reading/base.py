"""Shared pieces of patch readers: the interface, the tile LRU, the final resample."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from PIL import Image

WHITE = 255  # unscanned / outside-slide area, as OpenSlide's transparent pixels over glass


class ReadError(RuntimeError):
    """A patch could not be read; names the slide, the place and the cause."""


class PatchReader:
    """Reads square patches given level-0 top-left coords, delivered at ``out_size`` px.

    Implementations are opened inside each worker process (they hold file handles)."""

    name = "base"
    path: str
    level_dimensions: list[tuple[int, int]]
    level_downsamples: list[float]

    def read_patches(self, coords: np.ndarray, size_level0: float, out_size: int) -> np.ndarray:
        """(n, 2) level-0 (x, y) -> (n, out_size, out_size, 3) uint8 RGB."""
        raise NotImplementedError

    def describe(self, size_level0: float, out_size: int) -> dict:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TileLRU:
    """Decoded tiles keyed by (level, scale, tx, ty), evicted least-recently-used by bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max(0, int(max_bytes))
        self._d: OrderedDict = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    def get(self, key):
        arr = self._d.get(key)
        if arr is None:
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        return arr

    def put(self, key, arr: np.ndarray) -> None:
        self._d[key] = arr
        self.nbytes += arr.nbytes
        while self.nbytes > self.max_bytes and len(self._d) > 1:
            _, old = self._d.popitem(last=False)
            self.nbytes -= old.nbytes


def margin_for(box_px: float, out_size: int) -> int:
    """Source px beyond the box the bicubic filter reaches (its support grows when shrinking)."""
    return int(math.ceil(2.0 * max(1.0, box_px / out_size))) + 1


def resample(buf: np.ndarray, box: tuple[float, float, float, float], out_size: int) -> np.ndarray:
    """Bicubic (antialiased) resample of ``box`` (x0, y0, x1, y1, float px in ``buf``)."""
    img = Image.fromarray(buf)
    return np.asarray(img.resize((out_size, out_size), Image.Resampling.BICUBIC, box=box))
