"""Slide access, one package: open a slide, resolve its level-0 µm/px, read levels as RGB, and
pick a patch reader.

- :func:`open_slide` (``slide.py``): an ``openslide.OpenSlide`` or a :class:`SlideError` that
  names the file and the cause; :func:`read_rgb` reads a region as RGB on white.
- :func:`resolve_mpp` (``mpp.py``): level-0 µm/px and where it came from.
- :func:`patch_reader` (``readers.py``): the fast tiled-JPEG reader (``tiff.py``) or OpenSlide
  regions (``regions.py``), both :class:`PatchReader` (``base.py``) planned by ``plan.py``;
  ``loader.py`` streams batches of patches from worker processes.

Exports resolve lazily, so importing the package pulls in neither OpenSlide nor the decoders.
"""


__all__ = ["SlideError", "MppError", "open_slide", "read_rgb", "resolve_mpp", "mpp_from_properties",
           "patch_reader", "READERS", "PatchReader", "ReadError", "TileLRU", "TiledJpegReader",
           "NotTiledJpeg", "OpenSlideRegionReader", "ReadPlan", "plan_read", "best_level",
           "reading_order"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "MppError": ".mpp",
    "mpp_from_properties": ".mpp",
    "resolve_mpp": ".mpp",
    "SlideError": ".slide",
    "open_slide": ".slide",
    "read_rgb": ".slide",
    "patch_reader": ".readers",
    "READERS": ".readers",
    "PatchReader": ".base",
    "ReadError": ".base",
    "TileLRU": ".base",
    "TiledJpegReader": ".tiff",
    "NotTiledJpeg": ".tiff",
    "OpenSlideRegionReader": ".regions",
    "ReadPlan": ".plan",
    "plan_read": ".plan",
    "best_level": ".plan",
    "reading_order": ".plan",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
