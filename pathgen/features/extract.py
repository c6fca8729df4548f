"""Per-slide feature extraction: coords HDF5 + slide -> features HDF5.

Batches stream from reading workers into a `<out>.partial` HDF5 (with a `done` mask), so
memory stays bounded by a few batches and a killed run resumes where it stopped (when the
encoder, preprocessing and coords are unchanged). The finished file is copied into place
atomically and the partial file removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..atomic import atomic_path
from ..encoders import Encoder, load_encoder
from ..reading import open_reader
from ..reading.loader import PatchBatches, patch_loader
from ..tiling.h5io import read_coords
from .h5io import create_datasets, root_attrs, write_features

log = logging.getLogger(__name__)
FLUSH_EVERY = 16  # batches between flushes of the partial file


def _partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _run_key(encoder: Encoder, preprocessing: str, dtype: str, coords: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(encoder.identifier.encode())
    h.update(preprocessing.encode())
    h.update(dtype.encode())
    h.update(np.ascontiguousarray(coords, np.int64).tobytes())
    return h.hexdigest()[:32]


def _open_partial(path: Path, key: str, n: int, dim: int, dtype: str, coords, coords_attrs, attrs):
    """Reopen a matching partial file (resume) or start a new one; returns (file, done)."""
    if path.exists():
        try:
            f = h5py.File(path, "r+")
            if f.attrs.get("pathgen_run_key") == key and f["done"].shape == (n,):
                done = f["done"][()].astype(bool)
                log.info("resuming %s: %d of %d patches already done", path, int(done.sum()), n)
                return f, done
            f.close()
            log.info("discarding %s (made with other settings)", path)
        except (OSError, KeyError):
            log.warning("discarding unreadable partial file %s", path)
        path.unlink()
    f = h5py.File(path, "w")
    create_datasets(f, n, dim, dtype, coords, coords_attrs, {**attrs, "pathgen_run_key": key})
    f.create_dataset("done", shape=(n,), dtype=bool)
    return f, np.zeros(n, bool)


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="patch", desc=desc, dynamic_ncols=True)


def extract_features(slide: str | os.PathLike, coords_path: str | os.PathLike,
                     out: str | os.PathLike, encoder: Encoder | str = "tiny-demo", cfg=None,
                     batch_size: int = 64, num_workers: int = 1, device: str = "auto",
                     dtype: str = "float32", reader: str = "auto", tile_cache_mb: int = 256,
                     progress: bool = False) -> dict[str, Any]:
    """Encode every patch of ``coords_path`` on ``slide`` into ``out``; returns a summary."""
    out = Path(out)
    coords, coords_attrs = read_coords(coords_path)
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder, cfg, device)
    size0 = float(coords_attrs["patch_size_level0"])
    n, dim = len(coords), enc.embed_dim
    t0 = time.perf_counter()

    if n:
        with open_reader(slide, reader, tile_cache_mb) as r:
            read_desc = r.describe(size0, enc.image_size)
    else:  # nothing to read: do not require a readable slide for an empty file
        read_desc = {"reader": "none", "patch_size_level0": size0, "out_size": enc.image_size}
    preprocessing = json.dumps({**read_desc, "mean": list(enc.mean), "std": list(enc.std)})
    attrs = root_attrs(enc.name, enc.weights, preprocessing, dtype, dim,
                       extra={"encoder_kind": enc.kind, "encoder_identifier": enc.identifier})
    if n == 0:
        write_features(out, np.zeros((0, dim), dtype), coords, coords_attrs, attrs)
        log.info("%s: no patches; wrote empty features file %s", slide, out)
        return {"slide": str(slide), "n_patches": 0, "seconds": 0.0, "out": str(out)}

    partial = _partial_path(out)
    partial.parent.mkdir(parents=True, exist_ok=True)
    key = _run_key(enc, preprocessing, dtype, coords)
    f, done = _open_partial(partial, key, n, dim, dtype, coords, coords_attrs, attrs)
    todo = np.flatnonzero(~done)
    try:
        ds, done_ds = f["features"], f["done"]
        batches = PatchBatches(slide, coords, size0, enc.image_size, batch_size, reader,
                               tile_cache_mb, indices=todo)
        pin = enc.device.type == "cuda"
        with _progress(n, n - len(todo), progress, Path(slide).stem) as bar:
            for i, (idx, patches) in enumerate(patch_loader(batches, num_workers, pin)):
                feats = enc.encode_images(enc.normalize_uint8(patches)).cpu().numpy()
                idx = idx.numpy()
                order = np.argsort(idx)
                idx, feats = idx[order], feats[order].astype(dtype)
                if idx[-1] - idx[0] + 1 == len(idx):  # contiguous: one slab write
                    ds[idx[0]:idx[-1] + 1] = feats
                    done_ds[idx[0]:idx[-1] + 1] = True
                else:
                    ds[idx] = feats
                    done_ds[idx] = True
                if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                    f.flush()
                if bar is not None:
                    bar.update(len(idx))
        if not done_ds[()].all():
            raise RuntimeError(f"{slide}: {int((~done_ds[()]).sum())} patches were not encoded")
        del f["done"]
        del f.attrs["pathgen_run_key"]
    finally:
        f.close()
    with atomic_path(out, suffix=".h5") as tmp:
        shutil.copyfile(partial, tmp)
    partial.unlink()
    secs = time.perf_counter() - t0
    log.info("%s: %d patches -> %s in %.1f s (%.1f patches/s, %s)", Path(slide).name, n, out,
             secs, len(todo) / max(secs, 1e-9), read_desc["reader"])
    return {"slide": str(slide), "n_patches": n, "encoded": int(len(todo)), "seconds": secs,
            "out": str(out), "reader": read_desc}


def set_torch_threads(n: int | None) -> None:
    """Limit intra-op threads (Snakemake's `threads`), leaving reading workers their cores."""
    if n:
        torch.set_num_threads(max(1, int(n)))
