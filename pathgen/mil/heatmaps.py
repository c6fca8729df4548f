"""Attention heatmaps: per-patch attention drawn over the slide thumbnail (PNG).

Attention is shown as its percentile rank within the slide (as CLAM does), so slides with
very peaked and very flat attention are comparable. Patch rectangles come from the level-0
coords and the level-0 patch size in the coords attributes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path

log = logging.getLogger(__name__)


def percentile_ranks(a: np.ndarray) -> np.ndarray:
    if len(a) <= 1:
        return np.ones_like(a, dtype=float)
    order = np.argsort(np.argsort(a, kind="stable"), kind="stable")
    return order / (len(a) - 1)


def _thumbnail(slide_path: Path | None, extent: tuple[int, int], max_px: int) -> tuple[Image.Image, float]:
    """Slide thumbnail and its level-0 -> thumbnail scale; a white canvas when unreadable."""
    if slide_path is not None:
        try:
            from ..wsi import open_slide

            slide = open_slide(slide_path)
            w, h = slide.dimensions
            thumb = slide.get_thumbnail((max_px, max_px)).convert("RGB")
            slide.close()
            return thumb, thumb.width / w
        except Exception as err:  # noqa: BLE001 - a heatmap must not sink the benchmark
            log.warning("heatmap: cannot read thumbnail of %s (%s); drawing on a blank canvas",
                        slide_path, err)
    scale = max_px / max(extent)
    size = (max(1, round(extent[0] * scale)), max(1, round(extent[1] * scale)))
    return Image.new("RGB", size, "white"), scale


def draw_heatmap(out_png: Path, attention: np.ndarray, coords: np.ndarray, patch_size_level0: float,
                 slide_path: Path | None = None, title: str = "", max_px: int = 1024,
                 alpha: float = 0.5) -> Path:
    """Write thumbnail | thumbnail with attention overlay, side by side, as one PNG."""
    from matplotlib import colormaps

    coords = np.asarray(coords, dtype=float)
    ps = float(patch_size_level0)
    extent = (int(coords[:, 0].max() + ps), int(coords[:, 1].max() + ps))
    thumb, scale = _thumbnail(slide_path, extent, max_px)
    w, h = thumb.size
    heat = np.zeros((h, w), dtype=float)
    cover = np.zeros((h, w), dtype=bool)
    for (x, y), v in zip(coords * scale, percentile_ranks(np.asarray(attention, float))):
        x0, y0 = int(x), int(y)
        x1, y1 = max(x0 + 1, int(round(x + ps * scale))), max(y0 + 1, int(round(y + ps * scale)))
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], v)
        cover[y0:y1, x0:x1] = True
    rgb = (colormaps["jet"](heat)[..., :3] * 255).astype(np.uint8)
    base = np.asarray(thumb, dtype=float)
    over = base.copy()
    over[cover] = (1 - alpha) * base[cover] + alpha * rgb[cover]
    canvas = Image.new("RGB", (2 * w + 10, h), "white")
    canvas.paste(thumb, (0, 0))
    canvas.paste(Image.fromarray(over.astype(np.uint8)), (w + 10, 0))
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        canvas.save(tmp, format="PNG")
    if title:
        log.info("heatmap %s: %s", title, out_png)
    return out_png
