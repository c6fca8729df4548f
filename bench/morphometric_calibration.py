"""Calibration check of the morphometric captioning baseline against the demo ground truth.

    .venv/bin/python bench/morphometric_calibration.py [--demo-dir results/demo]
        [--patch-um 256 128] [--mpp 0.5] [--min-purity 0.7] [--max-per-class 40]
        [--dump /tmp/morpho.csv] [--captions 2]

Cuts patches from the CAPTION-split demo slides (slide_labels.csv; the holdout slides are the
zero-shot benchmark and are never looked at) at the tiling geometry (patch_um at mpp), labels
each by the ground-truth class covering >= min_purity of its footprint (glass counts against
it, as in the demo benchmark), saves it as JPEG q90 and reads it back (what the selection
stage writes and the captioner reads), runs the backend's measurements + tissue call and
prints a confusion matrix (rows = truth, columns = call), per-class accuracy, the CPU time per
patch, and example captions. Not product code: a measurement for docs/captioning.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from pathgen.demo.benchmark import read_patch
from pathgen.demo.classes import TISSUE_CLASSES
from pathgen.demo.generate import rasterize_regions

RASTER = 8
CODES = [c.code for c in TISSUE_CLASSES]


def patch_composition(cmap: np.ndarray, x: int, y: int, patch0: int) -> np.ndarray:
    """Fractions of the footprint per class (index 0 = glass, then TISSUE_CLASSES order)."""
    p = max(1, round(patch0 / RASTER))
    sub = cmap[y // RASTER:y // RASTER + p, x // RASTER:x // RASTER + p]
    return np.bincount(sub.ravel(), minlength=len(CODES) + 1)[:len(CODES) + 1] / sub.size


def labelled_patches(slide_path, geojson_path, patch_um: float, mpp: float, min_purity: float = 0.7,
                     stride: float = 1.0, jpeg_quality: int | None = 90):
    """Yield (truth_code, x, y, purity, second_code_or_None, rgb) for every grid patch of one
    slide whose majority class covers >= min_purity (second = next class if it covers >= 15 %)."""
    import openslide

    with openslide.OpenSlide(str(slide_path)) as s:
        W, H = s.dimensions
        mpp0 = float(s.properties[openslide.PROPERTY_NAME_MPP_X])
        patch0 = int(round(patch_um / mpp0))
        size_px = int(round(patch_um / mpp))
        cmap = rasterize_regions(json.loads(Path(geojson_path).read_text()), W, H, RASTER)
        step = max(1, int(patch0 * stride))
        for y in range(0, H - patch0 + 1, step):
            for x in range(0, W - patch0 + 1, step):
                comp = patch_composition(cmap, x, y, patch0)
                order = np.argsort(comp[1:])[::-1] + 1
                if comp[order[0]] < min_purity:
                    continue
                second = CODES[order[1] - 1] if comp[order[1]] >= 0.15 else None
                rgb = read_patch(s, x, y, patch0, size_px)
                if jpeg_quality:
                    buf = io.BytesIO()
                    Image.fromarray(rgb).save(buf, "JPEG", quality=jpeg_quality)
                    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
                yield CODES[order[0] - 1], x, y, float(comp[order[0]]), second, rgb


def caption_slides(demo_dir: Path) -> list[str]:
    with open(demo_dir / "slide_labels.csv", newline="") as fh:
        return [r["slide_id"] for r in csv.DictReader(fh) if r["split"] == "caption"]


def print_confusion(rows: list[tuple[str, str]], title: str) -> dict:
    calls = sorted({c for _, c in rows} | set(CODES),
                   key=lambda c: (c not in CODES, CODES.index(c) if c in CODES else 0, c))
    n = Counter(rows)
    print(f"\n{title}  (rows = ground truth, columns = tissue call)")
    w = max(len(c) for c in calls) + 1
    print(" " * 12 + "".join(f"{c[:w]:>{w}}" for c in calls) + f"{'n':>6}{'acc':>7}")
    acc = {}
    for t in CODES:
        tot = sum(n[(t, c)] for c in calls)
        if not tot:
            continue
        acc[t] = n[(t, t)] / tot
        print(f"{t:<12}" + "".join(f"{n[(t, c)]:>{w}}" for c in calls) + f"{tot:>6}{acc[t]:>7.2f}")
    overall = sum(n[(t, t)] for t in CODES) / max(1, len(rows))
    print(f"overall accuracy {overall:.3f} on {len(rows)} patches")
    return acc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-dir", type=Path, default=Path("results/demo"))
    ap.add_argument("--patch-um", type=float, nargs="+", default=[256.0, 128.0])
    ap.add_argument("--mpp", type=float, default=0.5)
    ap.add_argument("--min-purity", type=float, default=0.7)
    ap.add_argument("--max-per-class", type=int, default=40, help="per class and geometry, "
                    "drawn round-robin over slides")
    ap.add_argument("--slides", nargs="*", help="default: every caption-split slide")
    ap.add_argument("--dump", type=Path, help="CSV of measurements + truth + call")
    ap.add_argument("--captions", type=int, default=2, help="example captions per class")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    from pathgen.captioning.backends.morphometric import classify, describe_measurements
    from pathgen.captioning.morphometry import measure_patch
    from pathgen.config.captioning import MorphometricConfig

    t = MorphometricConfig()
    slides = a.slides or caption_slides(a.demo_dir)
    rng = np.random.default_rng(a.seed)
    dump_rows = []
    for um in a.patch_um:
        # candidates per class per slide, then round-robin so no slide dominates a class
        cand: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for sid in slides:
            for code, x, y, pur, second, rgb in labelled_patches(
                    a.demo_dir / "slides" / f"{sid}.svs", a.demo_dir / "regions" / f"{sid}.geojson",
                    um, a.mpp, a.min_purity):
                cand[code][sid].append((x, y, pur, second, rgb))
        chosen = []
        for code in CODES:
            per = {s: [v[i] for i in rng.permutation(len(v))] for s, v in cand[code].items()}
            while len([c for c in chosen if c[0] == code]) < a.max_per_class and any(per.values()):
                for s in list(per):
                    if per[s] and len([c for c in chosen if c[0] == code]) < a.max_per_class:
                        chosen.append((code, s, *per[s].pop()))
        rows, cpu, examples = [], [], defaultdict(list)
        for code, sid, x, y, pur, second, rgb in chosen:
            c0 = time.process_time()
            m = measure_patch(rgb, a.mpp, t.nucleus_min_area_um2, t.lumen_min_area_um2)
            call = classify(m, t)
            cap = describe_measurements(m, t)
            cpu.append(time.process_time() - c0)
            rows.append((code, call.tissue))
            if len(examples[code]) < a.captions:
                examples[code].append(cap)
            dump_rows.append({"patch_um": um, "slide": sid, "x": x, "y": y, "truth": code,
                              "purity": round(pur, 3), "second": second or "", "call": call.tissue,
                              **m.to_dict()})
        px = int(round(um / a.mpp))
        print_confusion(rows, f"== {um:g} µm at {a.mpp:g} µm/px ({px} px), purity >= {a.min_purity}")
        cpu = np.array(cpu)
        print(f"CPU time per patch (measure + call + caption, 1 thread): mean {cpu.mean():.3f} s, "
              f"p90 {np.percentile(cpu, 90):.3f} s, max {cpu.max():.3f} s")
        for code in CODES:
            for cap in examples[code]:
                print(f"  [{code}] {cap}")
    if a.dump and dump_rows:
        with open(a.dump, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(dump_rows[0]))
            w.writeheader()
            w.writerows(dump_rows)
        print(f"measurements -> {a.dump}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
