"""A realistically sized SVS for read benchmarks (e.g. 65536 x 49152 at 0.25 µm/px).

Cheap on purpose: a low-resolution tissue/class map decides each tile's content, and the
pixels come from a small bank of pre-rendered class textures (the demo renderer, periodic
tiling). It is a real tiled-JPEG Aperio pyramid written by streaming, so memory stays bounded
(< 1 GB) whatever the size; it is not meant to look anatomically plausible at low power.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from .aperio import TileSource, write_aperio_svs
from .classes import TISSUE_CLASSES
from .synth import render, smooth_noise

MAP = 64  # level-0 px per tissue-map px
TEX = 1024  # texture period (px)


def _texture_bank(rng, mpp: float, tile: int) -> list[np.ndarray]:
    bank = []
    for i in range(len(TISSUE_CLASSES)):
        lab = np.full((TEX // 4, TEX // 4), i + 1, np.uint8)
        tex = render(rng, lab, TEX, TEX, mpp)
        bank.append(np.pad(tex, ((0, tile), (0, tile), (0, 0)), mode="wrap"))
    return bank


def make_large_slide(path: str | os.PathLike, width: int = 65536, height: int = 49152,
                     mpp: float = 0.25, tissue_fraction: float = 0.25, seed: int = 0,
                     tile: int = 256, quality: int = 80) -> dict:
    """Stream a width x height Aperio SVS with ~tissue_fraction tissue to `path`."""
    if not 0 < tissue_fraction <= 1:
        raise ValueError(f"tissue_fraction must be in (0, 1], got {tissue_fraction}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1A26E]))
    mh, mw = -(-height // MAP), -(-width // MAP)
    # tissue = the top `tissue_fraction` of a smooth field shaped by a central envelope
    yy, xx = np.mgrid[0:mh, 0:mw].astype(np.float32)
    env = -(((xx - mw / 2) / (mw / 2)) ** 2 + ((yy - mh / 2) / (mh / 2)) ** 2)
    field = 1.5 * env + smooth_noise(rng, (mh, mw), max(4, mw / 6)) + 0.3 * smooth_noise(rng, (mh, mw), 3)
    tissue = field >= np.quantile(field, 1 - tissue_fraction)
    cls = (np.argmax(np.stack([smooth_noise(rng, (mh, mw), max(3, mw / 12))
                               for _ in TISSUE_CLASSES]), 0) + 1).astype(np.uint8)
    cmap = np.where(tissue, cls, 0).astype(np.uint8)
    bank = _texture_bank(rng, mpp, tile)
    white = np.full((tile, tile, 3), 244, np.uint8)

    def tile_fn(x, y, w, h):
        sub = cmap[y // MAP:(y + h + MAP - 1) // MAP, x // MAP:(x + w + MAP - 1) // MAP]
        if not sub.any():
            return white[:h, :w]
        lab = cv2.resize(sub, (sub.shape[1] * MAP, sub.shape[0] * MAP),
                         interpolation=cv2.INTER_NEAREST)[y % MAP:y % MAP + h, x % MAP:x % MAP + w]
        out = white[:h, :w].copy()
        tx, ty = x % TEX, y % TEX
        for c in np.unique(sub):
            if c:
                m = lab == c
                out[m] = bank[c - 1][ty:ty + h, tx:tx + w][m]
        return out

    return write_aperio_svs(path, TileSource(width, height, tile_fn), mpp, tile=tile, quality=quality,
                            description_extra={"Title": "pathgen synthetic read-benchmark slide"})
