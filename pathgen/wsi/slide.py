"""Opening whole-slide images through OpenSlide with errors that name the file and the fix.

OpenSlide reports a missing file, a JPEG renamed to .svs and a truncated pyramid all as
terse C-library messages; callers here get :class:`SlideError` with the path and the cause.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import openslide


class SlideError(RuntimeError):
    """A slide could not be opened or read. The message names the file and the cause."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"slide {self.path}: {cause}")


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


def _looks_like_tiff(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def open_slide(path: str | os.PathLike, probe: bool = True) -> openslide.OpenSlide:
    """Open ``path`` with OpenSlide; raise :class:`SlideError` for anything unusable.

    With ``probe`` one pixel at the far corner of every level is decoded, which catches
    truncated files (whose header still parses) before a long job starts on them.
    """
    p = Path(path)
    if not p.exists():
        raise SlideError(p, "file does not exist (check slides.dir / the sample sheet path)")
    if p.is_dir():
        raise SlideError(p, "is a folder, not a slide file (for MIRAX give the .mrxs file)")
    if p.stat().st_size == 0:
        raise SlideError(p, "file is empty (0 bytes); the copy/download is incomplete")
    try:
        slide = openslide.OpenSlide(str(p))
    except openslide.OpenSlideUnsupportedFormatError:
        if _looks_like_tiff(p):
            raise SlideError(p, f"has a TIFF header but OpenSlide cannot parse its directories: the "
                                f"file is probably truncated or corrupt ({p.stat().st_size} bytes); "
                                "copy it again") from None
        raise SlideError(p, "not a format OpenSlide can read (not a whole-slide image, or an "
                            "untiled/plain image). Convert it to a tiled pyramidal TIFF, e.g. "
                            "`vips tiffsave in out.tif --tile --pyramid --compression jpeg`") from None
    except openslide.OpenSlideError as err:
        raise SlideError(p, f"OpenSlide cannot open it (corrupt or truncated file?): {err}") from None
    except OSError as err:  # e.g. permission denied
        raise SlideError(p, f"cannot be read: {err}") from None
    if probe:
        for level, (w, h) in enumerate(slide.level_dimensions):
            if w < 1 or h < 1:
                slide.close()
                raise SlideError(p, f"level {level} has empty dimensions {w}x{h}")
            ds = slide.level_downsamples[level]
            corner = (int((w - 1) * ds), int((h - 1) * ds))
            try:
                slide.read_region(corner, level, (1, 1))
            except openslide.OpenSlideError as err:
                slide.close()
                raise SlideError(p, f"pixel data of level {level} cannot be decoded (truncated or "
                                    f"corrupt file?): {err}") from None
    return slide


def read_rgb(slide: openslide.OpenSlide, path: str | os.PathLike, location: tuple[int, int],
             level: int, size: tuple[int, int]) -> np.ndarray:
    """``read_region`` as an (h, w, 3) uint8 array, transparent (unscanned) areas made white."""
    try:
        rgba = np.asarray(slide.read_region(location, level, size))
    except openslide.OpenSlideError as err:
        raise SlideError(path, f"reading level {level} at {location} size {size} failed "
                               f"(truncated or corrupt file?): {err}") from None
    alpha = rgba[..., 3:4].astype(np.uint16)
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    # OpenSlide returns non-premultiplied RGBA; composite onto white like a glass slide.
    rgb = (rgba[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha)) // 255
    return rgb.astype(np.uint8)
