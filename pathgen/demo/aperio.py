"""Write real Aperio SVS files (what OpenSlide's `aperio` driver reads).

Format followed (Aperio ImageScope / OpenSlide's description of SVS): a TIFF whose
directories are, in order,
  0. level 0, tiled, JPEG (YCbCr 2x2) — its ImageDescription starts with "Aperio" and carries
     `|key = value` pairs (`AppMag`, `MPP`, ...) that OpenSlide exposes as `aperio.*`;
  1. a stripped (non-tiled) thumbnail — OpenSlide names the second directory "thumbnail";
  2+. lower-resolution levels, tiled JPEG, each a power-of-`ratio` downsample.
Every tile is a self-contained JPEG (no shared JPEGTables), which OpenSlide accepts.

The writer streams: level 0 is consumed one tile row ("strip") at a time and the lower levels
are built from those strips by box-averaging as they arrive, so memory is bounded by a strip
of level 0 plus the (JPEG-compressed) tiles of the lower levels — a 65536 x 49152 slide needs
a few hundred MB at most.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

import cv2
import imagecodecs
import numpy as np
import tifffile

from ..atomic import atomic_path

log = logging.getLogger(__name__)

APERIO_LIBRARY = "Aperio Image Library v12.0.15"  # the version string Aperio GT450/AT2 files carry
THUMBNAIL_MAX = 1024  # Aperio thumbnails are ~1024 px on the long side
SUBSAMPLING = (2, 2)  # Aperio JPEG tiles are YCbCr 4:2:0

TileFn = Callable[[int, int, int, int], np.ndarray]


@dataclass
class TileSource:
    """A level-0 image produced piecewise, so it never has to exist in memory at once.

    ``tiles`` is either a callable ``f(x, y, w, h) -> (h, w, 3) uint8`` (called once per tile,
    row by row, top to bottom) or an iterable yielding the tiles in that same row-major order
    (edge tiles may be the clipped size or full tile size; extra pixels are cropped).
    """

    width: int
    height: int
    tiles: Union[TileFn, Iterable[np.ndarray]]

    def __post_init__(self):
        if self.width < 1 or self.height < 1:
            raise ValueError(f"TileSource size must be positive, got {self.width}x{self.height}")


def default_levels(width: int, height: int, ratio: int = 4, smallest: int = 512) -> list[int]:
    """Downsamples 1, 4, 16, ... until the smallest level's long side is <= `smallest` px."""
    levels = [1]
    while max(width, height) // levels[-1] > smallest and min(width, height) // (levels[-1] * ratio) >= 1:
        levels.append(levels[-1] * ratio)
    return levels


def aperio_description(width: int, height: int, mpp: float, app_mag: float, tile: int,
                       quality: int, extra: dict[str, str] | None = None) -> str:
    """First-page ImageDescription in Aperio's layout: header line, then `|key = value` pairs."""
    fields = {"AppMag": f"{app_mag:g}", "MPP": f"{mpp:.4f}", "ScanScope ID": "PATHGEN-SYNTH",
              "StripeWidth": str(tile)}
    fields.update(extra or {})
    head = f"{APERIO_LIBRARY} \r\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) JPEG/RGB Q={quality}"
    return head + "".join(f"|{k} = {v}" for k, v in fields.items())


def _encode(tile_rgb: np.ndarray, quality: int) -> bytes:
    return imagecodecs.jpeg_encode(tile_rgb, level=quality, colorspace="RGB",
                                   outcolorspace="YCBCR", subsampling=SUBSAMPLING)


def _pad(block: np.ndarray, th: int, tw: int) -> np.ndarray:
    """Edge tiles are stored full-size (TIFF rule); replicate edges so JPEG has no seam."""
    h, w = block.shape[:2]
    if h == th and w == tw:
        return np.ascontiguousarray(block)
    return cv2.copyMakeBorder(np.ascontiguousarray(block), 0, th - h, 0, tw - w, cv2.BORDER_REPLICATE)


_UNIFORM: dict[tuple, bytes] = {}  # encoded single-colour tiles (glass), reused


def _encode_tile(block: np.ndarray, tile: int, quality: int) -> bytes:
    first = block[0, 0]
    if (block == first).all():  # blank glass is most of a slide: encode it once
        key = (tuple(int(v) for v in first), tile, quality)
        if key not in _UNIFORM:
            _UNIFORM[key] = _encode(np.broadcast_to(first, (tile, tile, 3)).copy(), quality)
        return _UNIFORM[key]
    return _encode(_pad(block, tile, tile), quality)


def _encode_strip(strip: np.ndarray, tile: int, quality: int) -> list[bytes]:
    return [_encode_tile(strip[:, x:x + tile], tile, quality) for x in range(0, strip.shape[1], tile)]


class _Level:
    """One pyramid level fed with rows of its parent; box-downsamples by an integer ratio."""

    def __init__(self, ratio: int, parent_w: int, parent_h: int, tile: int | None, quality: int):
        self.ratio = ratio
        self.width = parent_w // ratio
        self.height = parent_h // ratio
        self.tile = tile  # None: keep the whole level in memory (thumbnail)
        self.quality = quality
        self.pending: list[np.ndarray] = []  # parent rows not yet reduced (< ratio rows)
        self.rows: list[np.ndarray] = []  # own rows not yet encoded as a strip
        self.n_rows = 0  # own rows produced so far
        self.encoded: list[bytes] = []
        self.children: list[_Level] = []

    def feed(self, parent_rows: np.ndarray) -> None:
        if parent_rows.shape[0] == 0 or self.n_rows >= self.height:
            return
        self.pending.append(parent_rows)
        have = sum(p.shape[0] for p in self.pending)
        usable = (have // self.ratio) * self.ratio
        if usable == 0:
            return
        block = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending = [block[usable:]] if usable < have else []
        out_h = min(usable // self.ratio, self.height - self.n_rows)
        src = block[:out_h * self.ratio, :self.width * self.ratio]
        small = cv2.resize(src, (self.width, out_h), interpolation=cv2.INTER_AREA)
        self._push(small.reshape(out_h, self.width, 3))

    def _push(self, rows: np.ndarray) -> None:
        self.n_rows += rows.shape[0]
        self.rows.append(rows)
        if self.tile is None:
            return
        have = sum(r.shape[0] for r in self.rows)
        while have >= self.tile or (self.n_rows == self.height and have > 0):
            block = np.concatenate(self.rows) if len(self.rows) > 1 else self.rows[0]
            strip, rest = block[:self.tile], block[self.tile:]
            self.rows = [rest] if rest.shape[0] else []
            have = rest.shape[0]
            self.encoded.extend(_encode_strip(strip, self.tile, self.quality))
            for child in self.children:
                child.feed(strip)

    def image(self) -> np.ndarray:
        return np.concatenate(self.rows) if self.rows else np.zeros((0, self.width, 3), np.uint8)


def _strips(source: np.ndarray | TileSource, tile: int) -> Iterator[np.ndarray]:
    """Yield level-0 strips of `tile` rows (the last may be shorter), full width."""
    if isinstance(source, np.ndarray):
        for y in range(0, source.shape[0], tile):
            yield source[y:y + tile]
        return
    W, H = source.width, source.height
    it = None if callable(source.tiles) else iter(source.tiles)
    for y in range(0, H, tile):
        th = min(tile, H - y)
        strip = np.empty((th, W, 3), np.uint8)
        for x in range(0, W, tile):
            tw = min(tile, W - x)
            if it is None:
                t = source.tiles(x, y, tw, th)
            else:
                try:
                    t = next(it)
                except StopIteration:
                    raise ValueError(f"tile iterator ended early at tile x={x}, y={y} of a "
                                     f"{W}x{H} TileSource (tile={tile})") from None
            t = np.asarray(t)
            if t.dtype != np.uint8 or t.ndim != 3 or t.shape[2] != 3 or t.shape[0] < th or t.shape[1] < tw:
                raise ValueError(f"tile at x={x}, y={y} must be uint8 (>= {th}, >= {tw}, 3); got "
                                 f"{t.dtype} {t.shape}")
            strip[:, x:x + tw] = t[:th, :tw]
        yield strip


def _source_size(src: np.ndarray | TileSource) -> tuple[int, int]:
    """(width, height) of an RGB array or a TileSource; anything else is an error."""
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8 or src.ndim != 3 or src.shape[2] != 3:
            raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got {src.dtype} {src.shape}")
        return src.shape[1], src.shape[0]
    if isinstance(src, TileSource):
        return src.width, src.height
    raise TypeError("image_or_tile_source must be a numpy RGB array or a pathgen.demo.aperio.TileSource")


def _check_params(mpp: float, tile: int, quality: int) -> None:
    if mpp <= 0:
        raise ValueError(f"mpp must be > 0, got {mpp}")
    if tile % 16 or tile < 16:
        raise ValueError(f"tile must be a positive multiple of 16, got {tile}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")


def _check_levels(levels: list[int] | None, W: int, H: int) -> list[int]:
    levels = list(levels) if levels is not None else default_levels(W, H)
    if not levels or levels[0] != 1 or any(b % a or b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"levels must start at 1 and each be a multiple of the previous, got {levels}")
    return levels


def _pyramid(W: int, H: int, levels: list[int], tile: int, quality: int) -> tuple[list[_Level], _Level]:
    """The lower levels as a chain of _Level nodes fed by level-0 strips, and the thumbnail
    (which hangs off level 0 too)."""
    chain: list[_Level] = []
    pw, ph = W, H
    for prev, cur in zip(levels, levels[1:]):
        node = _Level(cur // prev, pw, ph, tile, quality)
        if node.width < 1 or node.height < 1:
            raise ValueError(f"downsample {cur} makes an empty level for a {W}x{H} image")
        (chain[-1].children if chain else []).append(node)
        chain.append(node)
        pw, ph = node.width, node.height
    thumb = _Level(max(1, -(-max(W, H) // THUMBNAIL_MAX)), W, H, None, quality)
    return chain, thumb


def _write_pages(tmp: Path, src: np.ndarray | TileSource, W: int, H: int, chain: list[_Level],
                 thumb: _Level, tile: int, quality: int, description: str, bigtiff: bool) -> np.ndarray:
    """Level 0 (feeding the rest as it streams), the thumbnail, then the lower levels;
    returns the thumbnail image."""
    roots = chain[:1] + [thumb]

    def level0_tiles() -> Iterator[bytes]:
        for strip in _strips(src, tile):
            for node in roots:
                node.feed(strip)
            yield from _encode_strip(strip, tile, quality)

    common = dict(photometric="rgb", compression="jpeg", compressionargs={"level": quality},
                  subsampling=SUBSAMPLING, metadata=None, dtype=np.uint8)
    with tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tw:
        tw.write(level0_tiles(), shape=(H, W, 3), tile=(tile, tile), description=description, **common)
        timg = thumb.image()
        tw.write(np.ascontiguousarray(timg), rowsperstrip=16,
                 description=f"{APERIO_LIBRARY} \r\n{W}x{H} -> {timg.shape[1]}x{timg.shape[0]} - ",
                 **common)
        for node in chain:
            tw.write(iter(node.encoded), shape=(node.height, node.width, 3), tile=(tile, tile),
                     description=(f"{APERIO_LIBRARY} \r\n{W}x{H} [0,0 {W}x{H}] -> "
                                  f"{node.width}x{node.height} JPEG/RGB Q={quality}"),
                     **common)
            node.encoded = []
    return timg


def write_aperio_svs(path: str | os.PathLike, image_or_tile_source: np.ndarray | TileSource,
                     mpp: float, app_mag: float | None = None, tile: int = 256, quality: int = 85,
                     levels: list[int] | None = None, description_extra: dict[str, str] | None = None,
                     bigtiff: bool | None = None) -> dict:
    """Write an Aperio SVS (tiled JPEG pyramid + thumbnail) atomically to `path`.

    `image_or_tile_source`: an (H, W, 3) uint8 RGB array or a :class:`TileSource`.
    `mpp`: level-0 µm/px (written as `MPP`); `app_mag` defaults to round(10 / mpp)
    (0.5 µm/px -> 20x, 0.25 -> 40x). `levels`: downsample factors starting with 1, each a
    multiple of the previous (default 1, 4, 16, ... down to <= 512 px). Returns a summary dict.
    """
    src = image_or_tile_source
    W, H = _source_size(src)
    _check_params(mpp, tile, quality)
    app_mag = app_mag if app_mag is not None else round(10.0 / mpp, 2)
    levels = _check_levels(levels, W, H)
    chain, thumb = _pyramid(W, H, levels, tile, quality)
    if bigtiff is None:
        bigtiff = W * H * 3 > 2**31  # JPEG is ~10-20x smaller; Aperio also switches to BigTIFF
    description = aperio_description(W, H, mpp, app_mag, tile, quality,
                                     {"Filename": Path(path).stem, **(description_extra or {})})
    with atomic_path(path) as tmp:
        timg = _write_pages(tmp, src, W, H, chain, thumb, tile, quality, description, bigtiff)
    dims = [(W, H)] + [(n.width, n.height) for n in chain]
    log.info("wrote %s: %dx%d, %d levels, mpp %.4f, AppMag %g", path, W, H, len(dims), mpp, app_mag)
    return {"path": str(path), "dimensions": dims, "downsamples": levels, "mpp": mpp,
            "app_mag": app_mag, "thumbnail": (timg.shape[1], timg.shape[0])}
