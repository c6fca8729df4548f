"""Patch-level zero-shot benchmark cut from the HOLDOUT demo slides' ground truth.

Output layout (torchvision ImageFolder / CLIP_benchmark style):
  zeroshot/<class_code>/<slide>_<x>_<y>.png   patches at the tiling geometry
  zeroshot/classes.json                       {code: class text}
  zeroshot/template                           one template, "{}" = class text
  zeroshot/prompts_conch.json                 CONCH prompt file: {"0": {"classnames": {code:
                                              [synonyms]}, "templates": [... CLASSNAME ...]}}
  zeroshot/manifest.csv                       file,class,slide_id,x,y,purity
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import openslide

from ..atomic import atomic_dir
from ..config import ConfigError
from ..config.inputs import DemoConfig
from ..config.tiling import TilingConfig
from ..wsi import open_slide
from ..zeroshot.files import CLASSES_JSON, MANIFEST_CSV, PROMPTS_CONCH_JSON, TEMPLATE_FILE
from .classes import BY_CODE, TISSUE_CLASSES
from .files import demo_zeroshot_patch
from .generate import rasterize_regions

log = logging.getLogger(__name__)
RASTER = 8  # ground truth is rasterised at 1/8 of level 0 to measure patch purity
# CONCH-style templates (CLASSNAME placeholder), a small ensemble
CONCH_TEMPLATES = ["CLASSNAME.", "a photomicrograph showing CLASSNAME.", "a photomicrograph of CLASSNAME.",
                   "an image of CLASSNAME.", "an image showing CLASSNAME.", "an example of CLASSNAME.",
                   "CLASSNAME is shown.", "this is CLASSNAME.", "there is CLASSNAME.",
                   "a histopathological image showing CLASSNAME.", "a histopathological image of CLASSNAME.",
                   "a histopathological photograph of CLASSNAME.", "a histopathological photograph showing CLASSNAME.",
                   "shows CLASSNAME.", "presence of CLASSNAME.", "CLASSNAME is present.",
                   "an H&E stained image of CLASSNAME.", "an H&E image of CLASSNAME."]


def pure_patches(classmap: np.ndarray, patch0: int, stride0: int, min_purity: float,
                 width: int, height: int) -> list[tuple[str, int, int, float]]:
    """(class, x, y, purity) of every grid patch whose footprint is >= min_purity one class.

    Purity = class area / footprint area, so background (no polygon) counts against it."""
    out = []
    p = max(1, round(patch0 / RASTER))
    n_cls = len(TISSUE_CLASSES)
    integ = [cv2.integral((classmap == i + 1).astype(np.uint8)) for i in range(n_cls)]
    for y in range(0, height - patch0 + 1, stride0):
        for x in range(0, width - patch0 + 1, stride0):
            gx, gy = x // RASTER, y // RASTER
            if gy + p > classmap.shape[0] or gx + p > classmap.shape[1]:
                continue
            best, frac = -1, 0.0
            for i, ii in enumerate(integ):
                a = ii[gy + p, gx + p] - ii[gy, gx + p] - ii[gy + p, gx] + ii[gy, gx]
                if a / (p * p) > frac:
                    best, frac = i, a / (p * p)
            if best >= 0 and frac >= min_purity:
                out.append((TISSUE_CLASSES[best].code, x, y, round(float(frac), 4)))
    return out


def read_patch(slide: openslide.OpenSlide, x: int, y: int, patch0: int, size_px: int) -> np.ndarray:
    """RGB patch covering level-0 [x, x+patch0)^2 resampled to size_px, from the best level."""
    ds = patch0 / size_px
    level = slide.get_best_level_for_downsample(ds) if ds >= 1 else 0
    lds = slide.level_downsamples[level]
    n = int(round(patch0 / lds))
    img = np.asarray(slide.read_region((x, y), level, (n, n)).convert("RGB"))
    if n != size_px:
        img = cv2.resize(img, (size_px, size_px),
                         interpolation=cv2.INTER_AREA if n > size_px else cv2.INTER_CUBIC)
    return img


def build_benchmark(slides: dict[str, Path], regions: dict[str, Path], out_dir: Path,
                    patch_um: float, target_mpp: float, size_px: int, min_purity: float = 0.9,
                    max_per_class: int = 120, stride: float = 0.5,
                    template: str = "An H&E image of {}.", seed: int = 0) -> dict:
    """Cut the benchmark from `slides` (slide_id -> SVS) using `regions` (slide_id -> GeoJSON)."""
    cands: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    geo = {}
    for sid, path in slides.items():
        if sid not in regions or not Path(regions[sid]).exists():
            raise FileNotFoundError(f"ground truth {regions.get(sid)} for slide {sid} is missing")
        with open_slide(path, probe=False) as s:
            mpp = float(s.properties.get(openslide.PROPERTY_NAME_MPP_X, 0) or 0)
            if mpp <= 0:
                raise ConfigError(f"{path} has no openslide.mpp-x; the demo benchmark needs it")
            W, H = s.dimensions
        patch0 = int(round(patch_um / mpp))
        geo[sid] = (patch0, W, H)
        gj = json.loads(Path(regions[sid]).read_text())
        cmap = rasterize_regions(gj, W, H, RASTER)
        for code, x, y, pur in pure_patches(cmap, patch0, max(1, int(patch0 * stride)), min_purity, W, H):
            cands[code][sid].append((x, y, pur))
    rng = np.random.default_rng(seed)
    chosen = []
    for code in sorted(cands):  # round-robin over slides so no slide dominates a class
        per = {sid: [v[i] for i in rng.permutation(len(v))] for sid, v in sorted(cands[code].items())}
        picked = 0
        while picked < max_per_class and any(per.values()):
            for sid in list(per):
                if per[sid] and picked < max_per_class:
                    chosen.append((code, sid, *per[sid].pop()))
                    picked += 1
    counts: dict[str, int] = defaultdict(int)
    with atomic_dir(out_dir) as tmp:
        man = io.StringIO()
        w = csv.writer(man, lineterminator="\n")
        w.writerow(["file", "class", "slide_id", "x", "y", "purity"])
        by_slide = defaultdict(list)
        for item in chosen:
            by_slide[item[1]].append(item)
        for sid, items in sorted(by_slide.items()):
            patch0 = geo[sid][0]
            with open_slide(slides[sid], probe=False) as s:
                for code, _, x, y, pur in sorted(items, key=lambda t: (t[0], t[3], t[2])):
                    rel = demo_zeroshot_patch(code, sid, x, y)
                    (tmp / code).mkdir(exist_ok=True)
                    img = read_patch(s, x, y, patch0, size_px)
                    cv2.imwrite(str(tmp / rel), img[..., ::-1])
                    w.writerow([rel, code, sid, x, y, pur])
                    counts[code] += 1
        classes = {c.code: c.text for c in TISSUE_CLASSES if counts.get(c.code)}
        (tmp / CLASSES_JSON).write_text(json.dumps(classes, indent=2) + "\n")
        (tmp / TEMPLATE_FILE).write_text(template + "\n")
        conch = {"0": {"classnames": {c: list(BY_CODE[c].synonyms) for c in classes},
                       "templates": CONCH_TEMPLATES}}
        (tmp / PROMPTS_CONCH_JSON).write_text(json.dumps(conch, indent=2) + "\n")
        (tmp / MANIFEST_CSV).write_text(man.getvalue())
    log.info("demo zero-shot benchmark in %s: %s", out_dir, dict(counts))
    return {"counts": dict(counts), "slides": sorted(slides), "size_px": size_px,
            "patch_um": patch_um, "target_mpp": target_mpp}


def demo_benchmark(demo: DemoConfig, tiling: TilingConfig, slides: dict[str, Path],
                   regions: dict[str, Path], out_dir: Path) -> dict:
    """The benchmark cut from the holdout demo ``slides`` (slide_id -> SVS; ``regions``: their
    ground truth) at the tiling geometry, with the `demo` section's zeroshot_* settings."""
    if not slides:
        raise ConfigError("no holdout slides: set demo.holdout_fraction > 0")
    um, mpp, px = tiling.geometry()
    return build_benchmark({s: Path(p) for s, p in slides.items()},
                           {s: Path(p) for s, p in regions.items()}, Path(out_dir), um, mpp, px,
                           demo.zeroshot_min_purity, demo.zeroshot_max_per_class, demo.zeroshot_stride,
                           demo.zeroshot_template, demo.seed)
