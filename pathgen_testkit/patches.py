"""Synthetic H&E-like patches and the selection files that list them, for the captioning,
agents and dataset tests (selection CSVs written with the selection stage's own writer,
pathgen.formats.selection_csv, docs/architecture.md "Selection"). Drawn with plain numpy so
the tissue types differ in exactly the measured quantities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pathgen.formats.selection_csv import SelectionRow, write_selection_csv

MPP = 0.5  # µm/px of the synthetic patches
NUCLEUS = (75, 45, 125)
LYMPH = (55, 35, 105)
PINK = (228, 158, 196)
PALE_PINK = (242, 196, 214)


def _disk(img, cy, cx, ry, rx, colour, angle=0.0):
    h, w = img.shape[:2]
    y, x = np.ogrid[:h, :w]
    ca, sa = np.cos(angle), np.sin(angle)
    u = ((x - cx) * ca + (y - cy) * sa) / rx
    v = (-(x - cx) * sa + (y - cy) * ca) / ry
    img[u * u + v * v <= 1] = colour


def synth_patch(kind: str, size: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), np.float32)
    img[:] = PALE_PINK if kind == "necrosis" else PINK
    if kind == "tumour":      # crowded, large, variable nuclei
        for _ in range(90):
            r = rng.uniform(4, 11)
            _disk(img, rng.uniform(0, size), rng.uniform(0, size), r, r * rng.uniform(1, 1.6),
                  NUCLEUS, rng.uniform(0, np.pi))
    elif kind == "stroma":    # few thin spindle nuclei
        for _ in range(10):
            _disk(img, rng.uniform(0, size), rng.uniform(0, size), 2.2, 9, NUCLEUS, rng.uniform(0, np.pi))
    elif kind == "lymphoid":  # many small round uniform nuclei
        for _ in range(260):
            _disk(img, rng.uniform(0, size), rng.uniform(0, size), 5.5, 5.5, LYMPH)
    elif kind == "necrosis":  # tiny dark fragments on a pale background
        for _ in range(250):
            r = rng.uniform(0.8, 1.6)
            _disk(img, rng.uniform(0, size), rng.uniform(0, size), r, r, (110, 60, 130))
    elif kind == "adipose":   # white cells separated by thin pink septa
        img[:] = (246, 246, 246)
        step = size // 4
        for i in range(0, size + 1, step):
            img[max(0, i - 2):i + 2, :] = PINK
            img[:, max(0, i - 2):i + 2] = PINK
    elif kind == "blank":
        img[:] = (246, 246, 246)
    else:
        raise ValueError(kind)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_selection(root: Path, slide: str = "slide_a", kinds=("tumour", "stroma", "lymphoid"),
                    n: int | None = None) -> tuple[Path, Path]:
    """Write ``root/selection/<slide>.csv`` + ``root/selection/patches/<slide>/<x>_<y>.jpg``;
    return (csv, patches_root)."""
    sel = root / "selection"
    patches = sel / "patches"
    (patches / slide).mkdir(parents=True, exist_ok=True)
    rows = []
    n = n or len(kinds)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        x, y = 512 * i, 1024
        rel = f"{slide}/{x}_{y}.jpg"
        Image.fromarray(synth_patch(kind, seed=i)).save(patches / rel, quality=95)
        rows.append(SelectionRow(slide_id=slide, x=x, y=y, level=0, patch_size_level0=512, size_px=256,
                                 source="cluster", score="0.5000", prompt="", cluster_id=i, image=rel))
    csv_path = sel / f"{slide}.csv"
    write_selection_csv(csv_path, rows)  # the selection stage's own writer (one schema)
    return csv_path, patches
