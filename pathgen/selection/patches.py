"""Read only the selected patches from the slide and save them as image files.

Files follow PathGen-Instruct's naming, ``<slide>/<x>_<y>.jpg`` (level-0 top-left x, y).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from PIL import Image

from ..wsi import open_slide, read_rgb


def image_name(slide_id: str, x: int, y: int, fmt: str) -> str:
    return f"{slide_id}/{int(x)}_{int(y)}.{'jpg' if fmt == 'jpeg' else 'png'}"


def read_patch(slide, slide_path, x: int, y: int, size_level0: int, out_px: int) -> Image.Image:
    """The level-0 square (x, y, size_level0) delivered at out_px x out_px.

    Reads from the coarsest pyramid level that still has at least the output resolution
    (the same pixels as a level-0 read + resize, much cheaper on 40x slides).
    """
    want_ds = size_level0 / out_px
    level = slide.get_best_level_for_downsample(want_ds + 1e-6)
    ds = slide.level_downsamples[level]
    side = max(1, int(round(size_level0 / ds)))
    img = Image.fromarray(read_rgb(slide, slide_path, (int(x), int(y)), level, (side, side)))
    if img.size != (out_px, out_px):
        img = img.resize((out_px, out_px), Image.Resampling.LANCZOS)
    return img


def save_patches(slide_path: str | os.PathLike, slide_id: str, xy: Iterable[tuple[int, int]],
                 size_level0: int, out_px: int, out_dir: Path, fmt: str = "jpeg",
                 quality: int = 90) -> list[str]:
    """Write each patch under ``out_dir/<x>_<y>.<ext>``; return the `image` names
    (``<slide>/<x>_<y>.<ext>``, relative to the patches root = out_dir's parent)."""
    xy = list(xy)
    names = []
    if not xy:
        return names
    slide = open_slide(slide_path)
    try:
        for x, y in xy:
            img = read_patch(slide, slide_path, x, y, size_level0, out_px)
            name = image_name(slide_id, x, y, fmt)
            target = out_dir / Path(name).name
            if fmt == "jpeg":
                img.save(target, format="JPEG", quality=quality)
            else:
                img.save(target, format="PNG")
            names.append(name)
    finally:
        slide.close()
    return names
