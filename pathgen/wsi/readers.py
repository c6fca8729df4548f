"""The patch-reader factory: fast tiled-JPEG TIFF/SVS decoding with an OpenSlide fallback.

``patch_reader(path, kind="auto")`` -> :class:`PatchReader`; ``reader.read_patches(coords,
size_level0, out_size)`` -> (n, out, out, 3) uint8. :func:`pathgen.wsi.loader.patch_loader`
streams batches from worker processes.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from .base import PatchReader
from .regions import OpenSlideRegionReader
from .tiff import NotTiledJpeg, TiledJpegReader

log = logging.getLogger(__name__)

READERS: dict[str, Callable[..., PatchReader]] = {
    "tiff": lambda path, cache_mb=256: TiledJpegReader(path, cache_mb=cache_mb),
    "openslide": lambda path, cache_mb=256: OpenSlideRegionReader(path),
}


def patch_reader(path: str | os.PathLike, kind: str = "auto", cache_mb: int = 256) -> PatchReader:
    """'auto': the tiled-JPEG reader when the file is one, else OpenSlide regions."""
    if kind == "auto":
        try:
            return TiledJpegReader(path, cache_mb=cache_mb)
        except NotTiledJpeg as why:
            log.info("fast TIFF reader not usable (%s); using OpenSlide regions", why)
            return OpenSlideRegionReader(path)
    try:
        factory = READERS[kind]
    except KeyError:
        raise ValueError(f"unknown reader '{kind}'; choose auto, {', '.join(READERS)}") from None
    return factory(path, cache_mb=cache_mb)
