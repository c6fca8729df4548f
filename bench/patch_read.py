"""Patch-reading benchmark on a realistically sized Aperio slide (PathGen geometry).

    .venv/bin/python bench/patch_read.py [--slide results/bench/large_65536x49152.svs]
        [--n 3000] [--naive-n 600] [--workers 2] [--size0 672] [--out 224]

Generates (once, then reuses) a 65536 x 49152 SVS at 0.25 µm/px with ~25 % tissue
(pathgen.demo.large.make_large_slide), takes a contiguous block of tissue patches in
row-major order and prints patches/s of
  (a) naive: OpenSlide read_region per patch + bicubic resize, torch DataLoader, N workers;
  (b) pathgen's reader (pathgen.wsi, same DataLoader set-up);
  (c) ceiling: full-resolution JPEG decode of every level-0 tile those patches touch, once,
      in N processes (no assembly, no resize);
with the ratios b/a and b/c, then the peak RSS of a full feature extraction (tiny encoder)
over the same patches. The machine may be shared: the load average is printed with the
numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from torch.utils.data import DataLoader, Dataset

from pathgen.wsi import TiledJpegReader
from pathgen.wsi.loader import PatchBatches, patch_loader
from pathgen.wsi.plan import reading_order

DEFAULT_SLIDE = Path("results/bench/large_65536x49152.svs")


def ensure_slide(path: Path, width: int, height: int) -> Path:
    if path.exists():
        return path
    from pathgen.demo.large import make_large_slide

    print(f"generating {path} ({width}x{height}, 0.25 mpp, 25 % tissue) ...", flush=True)
    t = time.perf_counter()
    make_large_slide(path, width, height, mpp=0.25, tissue_fraction=0.25)
    print(f"  done in {time.perf_counter() - t:.0f} s, {path.stat().st_size / 2**20:.0f} MiB")
    return path


def tissue_block(path: Path, size0: int, n: int) -> np.ndarray:
    """Row-major block of grid patches around the slide centre that contain tissue."""
    import openslide

    s = openslide.OpenSlide(str(path))
    lvl = s.level_count - 1
    ds = s.level_downsamples[lvl]
    thumb = np.asarray(s.read_region((0, 0), lvl, s.level_dimensions[lvl]).convert("RGB"))
    W, H = s.dimensions
    s.close()
    sat = thumb.max(-1).astype(int) - thumb.min(-1)
    cols, rows = W // size0, H // size0
    keep = []
    for r in range(rows):
        for c in range(cols):
            y0, x0 = int(r * size0 / ds), int(c * size0 / ds)
            cell = sat[y0:y0 + max(1, int(size0 / ds)), x0:x0 + max(1, int(size0 / ds))]
            if cell.size and (cell > 20).mean() > 0.5:
                keep.append((c * size0, r * size0))
    keep = np.array(keep, np.int64)
    if len(keep) <= n:
        return keep
    mid = len(keep) // 2 - n // 2
    return keep[mid:mid + n]  # contiguous in row-major order


class NaivePatches(Dataset):
    """The common per-patch loop: read_region + RGBA->RGB + resize, one patch per item."""

    def __init__(self, path, coords, size0, out):
        self.path, self.coords, self.size0, self.out = str(path), coords, size0, out
        self._slide = None

    def __len__(self):
        return len(self.coords)

    def __getitem__(self, i):
        import openslide
        from PIL import Image

        if self._slide is None:
            self._slide = openslide.OpenSlide(self.path)
        x, y = self.coords[i]
        img = self._slide.read_region((int(x), int(y)), 0, (self.size0, self.size0)).convert("RGB")
        img = img.resize((self.out, self.out), Image.Resampling.BICUBIC)
        return torch.from_numpy(np.asarray(img))


def bench_naive(path, coords, size0, out, workers) -> float:
    dl = DataLoader(NaivePatches(path, coords, size0, out), batch_size=32, num_workers=workers)
    t = time.perf_counter()
    n = sum(len(b) for b in dl)
    return n / (time.perf_counter() - t)


def bench_pathgen(path, coords, size0, out, workers) -> float:
    ds = PatchBatches(path, coords, size0, out, batch_size=64)
    t = time.perf_counter()
    n = sum(len(idx) for idx, _ in patch_loader(ds, workers))
    return n / (time.perf_counter() - t)


def touched_tiles(reader: TiledJpegReader, coords, size0) -> list[tuple[int, int]]:
    lv = reader._levels[0]
    tiles = set()
    for x, y in coords:
        for ty in range(int(y) // lv.tile_h, (int(y) + size0 - 1) // lv.tile_h + 1):
            for tx in range(int(x) // lv.tile_w, (int(x) + size0 - 1) // lv.tile_w + 1):
                if tx < lv.tiles_across and ty * lv.tile_h < lv.height:
                    tiles.add((tx, ty))
    return sorted(tiles, key=lambda t: (t[1], t[0]))


_R = None


def _decode_chunk(args):
    import simplejpeg

    global _R
    path, tiles = args
    if _R is None:
        _R = TiledJpegReader(path)
    for tx, ty in tiles:
        simplejpeg.decode_jpeg(_R.raw_tile(0, tx, ty), colorspace="RGB")
    return len(tiles)


def bench_ceiling(path, coords, size0, workers) -> tuple[float, int]:
    with TiledJpegReader(path) as r:
        tiles = touched_tiles(r, coords, size0)
        for tx, ty in tiles:  # page cache warm, like the other two after their first pass
            r.raw_tile(0, tx, ty)
    chunks = [(str(path), list(c)) for c in np.array_split(np.array(tiles), workers * 8)]
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(_decode_chunk, chunks[:workers])  # start-up outside the timing
        t = time.perf_counter()
        pool.map(_decode_chunk, chunks)
        secs = time.perf_counter() - t
    return len(coords) / secs, len(tiles)


def peak_rss_extraction(path, coords, size0, workers) -> dict:
    from pathgen.config.features import FeaturesConfig
    from pathgen.features.extract import extract_features
    from pathgen.tiling.h5io import coords_attrs, write_coords

    with tempfile.TemporaryDirectory() as tmp:
        cpath = Path(tmp) / "coords.h5"
        attrs = coords_attrs(name="bench", save_dir=tmp, mpp=0.25, mpp_source="bench",
                             target_mpp=0.25 * size0 / 224, patch_size_um=size0 * 0.25,
                             patch_size=224, patch_size_level0=size0, level0_dims=(1, 1))
        write_coords(cpath, coords, attrs)
        me = psutil.Process()
        peak = {"tree": 0, "pss": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                procs = [me] + me.children(recursive=True)
                total = pss = 0
                for p in procs:
                    try:  # PSS splits pages shared by forked workers instead of re-counting
                        info = p.memory_full_info()
                        total, pss = total + info.rss, pss + info.pss
                    except psutil.Error:
                        pass
                peak["tree"] = max(peak["tree"], total)
                peak["pss"] = max(peak["pss"], pss)
                time.sleep(0.1)

        base = me.memory_info().rss
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t = time.perf_counter()
        extract_features(path, cpath, Path(tmp) / "f.h5", "tiny-demo",
                         FeaturesConfig(batch_size=64, num_workers=workers, device="cpu"))
        secs = time.perf_counter() - t
        stop.set()
        th.join()
    return {"rss_before_mb": base / 2**20, "peak_tree_rss_mb": peak["tree"] / 2**20,
            "peak_tree_pss_mb": peak["pss"] / 2**20,
            "ru_maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "ru_maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "patches_per_s_with_encoder": len(coords) / secs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slide", type=Path, default=DEFAULT_SLIDE)
    ap.add_argument("--width", type=int, default=65536)
    ap.add_argument("--height", type=int, default=49152)
    ap.add_argument("--n", type=int, default=3000, help="patches for (b), (c) and extraction")
    ap.add_argument("--naive-n", type=int, default=600, help="patches for the slow naive loop")
    ap.add_argument("--size0", type=int, default=672)
    ap.add_argument("--out", type=int, default=224)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-rss", action="store_true", help="skip the extraction RSS run")
    ap.add_argument("--rss-only", action="store_true",
                    help="only the extraction memory run (in this fresh process)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    path = ensure_slide(args.slide, args.width, args.height)
    coords = tissue_block(path, args.size0, args.n)
    coords = coords[reading_order(coords)]
    if args.rss_only:
        m = peak_rss_extraction(path, coords, args.size0, args.workers)
        print("extraction (tiny-demo, cpu): " + ", ".join(f"{k}={v:.1f}" for k, v in m.items()))
        return 0
    with TiledJpegReader(path) as r:
        plan = r.plan(args.size0, args.out)
    print(f"slide {path} {path.stat().st_size / 2**20:.0f} MiB; {len(coords)} tissue patches "
          f"{args.size0}px -> {args.out}px (level {plan.level}, DCT {plan.dct_scale}/8); "
          f"{args.workers} workers; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    c, n_tiles = bench_ceiling(path, coords, args.size0, args.workers)
    b = bench_pathgen(path, coords, args.size0, args.out, args.workers)
    a = bench_naive(path, coords[:args.naive_n], args.size0, args.out, args.workers)
    print(f"(a) naive read_region loop : {a:8.1f} patches/s  ({min(len(coords), args.naive_n)} patches)")
    print(f"(b) pathgen reader         : {b:8.1f} patches/s")
    print(f"(c) raw JPEG decode ceiling: {c:8.1f} patches/s  ({n_tiles} level-0 tiles, full res)")
    print(f"b/a = {b / a:.2f}x   b/c = {100 * b / c:.0f} %   (targets: >= 5x, >= 60 %)")
    if not args.no_rss:
        m = peak_rss_extraction(path, coords, args.size0, args.workers)
        print("extraction (tiny-demo, cpu): " + ", ".join(f"{k}={v:.1f}" for k, v in m.items()))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
