"""Small real slide files for the tests: textured RGB images written as Aperio SVS
(pathgen.demo.aperio) or as a generic tiled TIFF whose tiles are abbreviated JPEG streams
sharing a JPEGTables tag with Photometric=RGB (how libtiff-written and many Aperio files
store JPEG), tissue-like SVS slides for whole-workflow runs (`write_real_slides`), plus naive
OpenSlide reads to compare against. (pathgen's own large streamed slide for read benchmarks
is a product command: `pathgen demo-large-slide`, pathgen.demo.large.)"""

from __future__ import annotations

from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import openslide
import tifffile
from PIL import Image

from pathgen.demo.aperio import write_aperio_svs


def textured(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs plus mild noise: JPEG-friendly but not flat."""
    rng = np.random.default_rng(seed)
    base = (rng.random((max(2, height // 24), max(2, width // 24), 3)) * 255).astype(np.uint8)
    img = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-8, 9, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_svs(path: Path, width: int = 1536, height: int = 1088, levels=(1, 4), seed: int = 0) -> np.ndarray:
    img = textured(width, height, seed)
    write_aperio_svs(path, img, mpp=0.5, tile=256, levels=list(levels))
    return img


def _renumber(seg: bytes, first: int, step: int) -> bytes:
    """Set the component ids of a SOF (first=10, step=3) or SOS (first=5, step=2) segment to
    1, 2, 3 as libtiff writes them: then only the Photometric tag says the data are RGB."""
    seg = bytearray(seg)
    for k in range(3):
        seg[first + k * step] = k + 1
    return bytes(seg)


def _split_tables(jpeg: bytes) -> tuple[bytes, bytes]:
    """Full JPEG -> (tables-only stream SOI+DQT+DHT+EOI, abbreviated stream without tables or
    APPn markers, component ids 1-3), walking the marker segments."""
    assert jpeg[:2] == b"\xff\xd8"
    tables, rest, i = [b"\xff\xd8"], [b"\xff\xd8"], 2
    while i < len(jpeg):
        marker = jpeg[i:i + 2]
        length = int.from_bytes(jpeg[i + 2:i + 4], "big")
        seg = jpeg[i:i + 2 + length]
        if marker == b"\xff\xda":  # start of scan: everything after is entropy data + EOI
            rest.append(_renumber(seg, 5, 2) + jpeg[i + 2 + length:])
            break
        if marker == b"\xff\xc0":
            seg = _renumber(seg, 10, 3)
        if marker in (b"\xff\xdb", b"\xff\xc4"):
            tables.append(seg)
        elif not (0xE0 <= marker[1] <= 0xEF):  # drop JFIF/Adobe APPn, keep SOF/DRI
            rest.append(seg)
        i += 2 + length
    tables.append(b"\xff\xd9")
    return b"".join(tables), b"".join(rest)


def make_rgb_tables_tiff(path: Path, width: int = 700, height: int = 500, tile: int = 128,
                         seed: int = 1) -> np.ndarray:
    """Single-level generic tiled TIFF, JPEG tiles in RGB colour space + shared JPEGTables."""
    img = textured(width, height, seed)
    tiles, tables = [], None
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            block = np.zeros((tile, tile, 3), np.uint8)
            part = img[y:y + tile, x:x + tile]
            block[:part.shape[0], :part.shape[1]] = part
            full = imagecodecs.jpeg8_encode(block, level=90, colorspace="RGB", outcolorspace="RGB",
                                            subsampling=(1, 1))
            t, abbreviated = _split_tables(full)
            tables = tables or t
            tiles.append(abbreviated)
    with tifffile.TiffWriter(path) as tw:
        tw.write(iter(tiles), shape=(height, width, 3), dtype=np.uint8, tile=(tile, tile),
                 photometric="rgb", compression="jpeg", subsampling=(1, 1), metadata=None,
                 compressionargs={"outcolorspace": "RGB"},  # Photometric tag = RGB
                 extratags=[(347, 7, len(tables), tables, True)])
    return img


def naive_patch(slide: openslide.OpenSlide, x: int, y: int, size0: int, out: int,
                level: int = 0) -> np.ndarray:
    """What the per-patch loop does: read_region (level 0 by default), composite on white,
    resize."""
    n = int(round(size0 / slide.level_downsamples[level]))
    rgba = np.asarray(slide.read_region((int(x), int(y)), level, (n, n)))
    a = rgba[..., 3:4].astype(np.uint16)
    rgb = ((rgba[..., :3] * a + 255 * (255 - a)) // 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((out, out), Image.Resampling.BICUBIC))


def write_real_slides(folder: Path, n: int, size: int = 768, seed: int = 0,
                      start: int = 0) -> list[Path]:
    """Small real Aperio SVS files with tissue-like content (pathgen.demo.aperio)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        rng = np.random.default_rng(seed + i)
        img = np.full((size, size, 3), 240, np.uint8)
        # A pink/purple blob covering the middle: tissue for the segmenter, texture for encoders.
        yy, xx = np.mgrid[:size, :size]
        r = size * (0.3 + 0.05 * rng.random())
        blob = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r * r
        noise = rng.integers(0, 40, (size, size, 1))
        tissue = np.array([200, 110, 170], np.int64) - noise
        img[blob] = np.clip(tissue, 0, 255).astype(np.uint8)[blob]
        path = folder / f"slide_{i:03d}.svs"
        write_aperio_svs(path, img, mpp=0.5, app_mag=20)
        out.append(path)
    return out
