"""Fast patch reading from tiled-JPEG TIFF pyramids (Aperio SVS, generic tiled TIFF).

Instead of OpenSlide's read_region per patch, the tile index of each pyramid level
(TIFF TileOffsets/TileByteCounts, read with tifffile) is used to pread the raw JPEG bytes of
each tile; abbreviated tile streams get the level's JPEGTables merged in (TIFF Technical
Note 2, "new-style" JPEG); each tile is decoded once with libjpeg-turbo's DCT scaling at
M/8 of full size (simplejpeg) and kept in an LRU; patches (read in row-major order) are cut
from the cached tiles and resampled to the output size.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import simplejpeg
import tifffile

from .base import RESAMPLE_DOC, WHITE, PatchReader, ReadError, TileLRU, margin_for, resample
from .plan import ReadPlan, plan_read

_JPEG = 7  # TIFF Compression: new-style JPEG
_RGB, _YCBCR = 2, 6  # TIFF PhotometricInterpretation
# APP14 "Adobe" segment with transform=0: tells libjpeg the components are RGB, not YCbCr
# (TIFF Photometric=RGB JPEG tiles carry no JFIF/Adobe marker of their own).
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


class NotTiledJpeg(ValueError):
    """The file is not a tiled 8-bit RGB JPEG TIFF pyramid; use the OpenSlide reader."""


@dataclass
class _Level:
    width: int
    height: int
    tile_w: int
    tile_h: int
    offsets: np.ndarray
    counts: np.ndarray
    tables: bytes | None
    photometric: int
    ds_x: float
    ds_y: float

    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_w)


def _levels_of(tif: tifffile.TiffFile) -> list[_Level]:
    series = tif.series[0]
    levels = list(series.levels) or [series]
    out: list[_Level] = []
    w0 = h0 = None
    for lv in levels:
        page = lv.keyframe
        why = None
        if not page.is_tiled:
            why = "is not tiled"
        elif page.compression != _JPEG:
            why = f"uses compression {page.compression} (not JPEG)"
        elif page.photometric not in (_RGB, _YCBCR) or page.samplesperpixel != 3:
            why = f"is not 3-sample RGB/YCbCr (photometric {page.photometric})"
        elif page.bitspersample != 8 or page.planarconfig != 1 or page.tiledepth > 1:
            why = "is not 8-bit contiguous 2-D"
        if why:
            raise NotTiledJpeg(f"{tif.filehandle.path}: pyramid level {len(out)} {why}")
        w, h = page.imagewidth, page.imagelength
        if w0 is None:
            w0, h0 = w, h
        out.append(_Level(width=w, height=h, tile_w=page.tilewidth, tile_h=page.tilelength,
                          offsets=np.asarray(page.dataoffsets, np.int64),
                          counts=np.asarray(page.databytecounts, np.int64),
                          tables=page.jpegtables or None, photometric=page.photometric,
                          ds_x=w0 / w, ds_y=h0 / h))
    return out


class TiledJpegReader(PatchReader):
    name = "tiff-jpeg"

    def __init__(self, path: str | os.PathLike, cache_mb: int = 256, dct_scaling: bool = True):
        self.path = str(path)
        try:
            with tifffile.TiffFile(self.path) as tif:
                self._levels = _levels_of(tif)
        except NotTiledJpeg:
            raise
        except Exception as err:  # not a TIFF at all, truncated header, ...
            raise NotTiledJpeg(f"{self.path}: not readable as TIFF ({err})") from err
        self.level_dimensions = [(lv.width, lv.height) for lv in self._levels]
        self.level_downsamples = [(lv.ds_x + lv.ds_y) / 2 for lv in self._levels]
        self.dct_scaling = dct_scaling
        self.cache = TileLRU(cache_mb * 2**20)
        self._fd: int | None = None
        self._pid: int | None = None
        self.tiles_decoded = 0

    # -- file access (one descriptor per process: safe after fork) ------------------------
    def _read_bytes(self, offset: int, count: int) -> bytes:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        data = os.pread(self._fd, count, offset)
        if len(data) != count:
            raise ReadError(f"slide {self.path}: tile data at byte {offset} is cut short "
                            f"({len(data)} of {count} bytes): truncated file?")
        return data

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def raw_tile(self, level: int, tx: int, ty: int) -> bytes:
        """The tile as a complete JPEG stream (tables merged, colour space made explicit)."""
        lv = self._levels[level]
        i = ty * lv.tiles_across + tx
        data = self._read_bytes(int(lv.offsets[i]), int(lv.counts[i]))
        if lv.tables and len(lv.tables) > 4:
            data = lv.tables[:-2] + data[2:]  # tables' SOI..(no EOI) + tile after its SOI
        if lv.photometric == _RGB and b"JFIF" not in data[:32] and b"Adobe" not in data[:64]:
            data = data[:2] + _ADOBE_RGB + data[2:]
        return data

    def _tile(self, level: int, scale: int, tx: int, ty: int) -> np.ndarray | None:
        key = (level, scale, tx, ty)
        arr = self.cache.get(key)
        if arr is not None:
            return arr
        lv = self._levels[level]
        if lv.counts[ty * lv.tiles_across + tx] == 0:
            return None  # sparse tile: nothing scanned there
        want_w, want_h = -(-lv.tile_w * scale // 8), -(-lv.tile_h * scale // 8)
        data = self.raw_tile(level, tx, ty)
        try:
            arr = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=want_w,
                                         min_height=want_h, strict=False)
        except ValueError as err:
            raise ReadError(f"slide {self.path}: level {level} tile ({tx}, {ty}) is not a "
                            f"decodable JPEG ({err}); the file may be corrupt") from err
        self.tiles_decoded += 1
        self.cache.put(key, arr)
        return arr

    # -- patches ------------------------------------------------------------------------
    def plan(self, size_level0: float, out_size: int) -> ReadPlan:
        return plan_read(self.level_downsamples, size_level0, out_size, self.dct_scaling)

    def describe(self, size_level0: float, out_size: int) -> dict:
        p = self.plan(size_level0, out_size)
        return {"reader": self.name, "level": p.level, "level_downsample": p.level_downsample,
                "jpeg_dct_scale": f"{p.dct_scale}/8", "resample": RESAMPLE_DOC,
                "patch_size_level0": size_level0, "out_size": out_size}

    def read_patches(self, coords: np.ndarray, size_level0: float, out_size: int) -> np.ndarray:
        coords = np.asarray(coords, np.int64).reshape(-1, 2)
        plan = self.plan(size_level0, out_size)
        out = np.empty((len(coords), out_size, out_size, 3), np.uint8)
        for i, (x, y) in enumerate(coords):
            out[i] = self._read_one(int(x), int(y), size_level0, out_size, plan)
        return out

    def _read_one(self, x0: int, y0: int, size0: float, out: int, plan: ReadPlan) -> np.ndarray:
        lv = self._levels[plan.level]
        s = plan.dct_scale
        # Decoded-pixel space of this level at scale s/8.
        fx, fy = s / (8.0 * lv.ds_x), s / (8.0 * lv.ds_y)
        ax, ay, bx, by = x0 * fx, y0 * fy, (x0 + size0) * fx, (y0 + size0) * fy
        m = margin_for(bx - ax, out)
        ix0, iy0 = math.floor(ax) - m, math.floor(ay) - m
        ix1, iy1 = math.ceil(bx) + m, math.ceil(by) + m
        buf = np.full((iy1 - iy0, ix1 - ix0, 3), WHITE, np.uint8)
        tw, th = -(-lv.tile_w * s // 8), -(-lv.tile_h * s // 8)
        # A partial last pixel still holds mostly slide content: keep it.
        valid_w, valid_h = -(-lv.width * s // 8), -(-lv.height * s // 8)
        cx0, cy0 = max(ix0, 0), max(iy0, 0)
        cx1, cy1 = min(ix1, valid_w), min(iy1, valid_h)
        for ty in range(cy0 // th, (cy1 - 1) // th + 1 if cy1 > cy0 else 0):
            for tx in range(cx0 // tw, (cx1 - 1) // tw + 1 if cx1 > cx0 else 0):
                tile = self._tile(plan.level, s, tx, ty)
                if tile is None:
                    continue
                # Intersection of tile, valid area and buffer, in decoded-level px.
                gx0, gy0 = max(tx * tw, cx0), max(ty * th, cy0)
                gx1 = min(tx * tw + tile.shape[1], cx1)
                gy1 = min(ty * th + tile.shape[0], cy1)
                if gx1 <= gx0 or gy1 <= gy0:
                    continue
                buf[gy0 - iy0:gy1 - iy0, gx0 - ix0:gx1 - ix0] = \
                    tile[gy0 - ty * th:gy1 - ty * th, gx0 - tx * tw:gx1 - tx * tw]
        return resample(buf, (ax - ix0, ay - iy0, bx - ix0, by - iy0), out)
