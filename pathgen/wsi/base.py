"""Shared pieces of patch readers: the interface, the tile LRU, the final resample."""

from __future__ import annotations

import abc

import math
from collections import OrderedDict

import cv2
import numpy as np
from PIL import Image

# OpenCV's thread pool does not survive fork(): a DataLoader worker forked from a process
# whose pool had run can deadlock in its first cv2 call. Patch resampling is tiny and the
# parallelism comes from reading workers, so keep OpenCV single-threaded wherever pathgen
# reads patches (set here, in the parent, before any worker is forked).
cv2.setNumThreads(1)

WHITE = 255  # unscanned / outside-slide area, as OpenSlide's transparent pixels over glass


class ReadError(RuntimeError):
    """A patch could not be read; names the slide, the place and the cause."""


class PatchReader(abc.ABC):
    """Reads square patches given level-0 top-left coords, delivered at ``out_size`` px.

    Implementations are opened inside each worker process (they hold file handles)."""

    name = "base"
    path: str
    level_dimensions: list[tuple[int, int]]
    level_downsamples: list[float]

    @abc.abstractmethod
    def read_patches(self, coords: np.ndarray, size_level0: float, out_size: int) -> np.ndarray:
        """(n, 2) level-0 (x, y) -> (n, out_size, out_size, 3) uint8 RGB."""

    @abc.abstractmethod
    def describe(self, size_level0: float, out_size: int) -> dict:
        """What this reader does for a geometry (level, decode scale), for provenance."""

    def close(self) -> None:  # noqa: B027 (optional hook: readers without resources keep it)
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


# Up to this shrink factor a bilinear warp barely aliases and is ~3x faster than PIL's
# antialiased bicubic; DCT scaling leaves at most 8/7 for the final resize in the usual case.
BILINEAR_MAX_SHRINK = 1.5
RESAMPLE_DOC = (f"bilinear (cv2.warpAffine) when the final shrink is <= {BILINEAR_MAX_SHRINK}x, "
                "else antialiased bicubic (PIL)")


def resample(buf: np.ndarray, box: tuple[float, float, float, float], out_size: int) -> np.ndarray:
    """Resample ``box`` (x0, y0, x1, y1: float px in ``buf``) to ``out_size`` square."""
    x0, y0, x1, y1 = box
    rx, ry = (x1 - x0) / out_size, (y1 - y0) / out_size
    if max(rx, ry) <= BILINEAR_MAX_SHRINK:
        # inverse map: output pixel centre (i + .5) -> source position (pixel-centre convention)
        m = np.array([[rx, 0.0, x0 + 0.5 * rx - 0.5], [0.0, ry, y0 + 0.5 * ry - 0.5]])
        return cv2.warpAffine(buf, m, (out_size, out_size),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    img = Image.fromarray(buf)
    return np.asarray(img.resize((out_size, out_size), Image.Resampling.BICUBIC, box=box))
