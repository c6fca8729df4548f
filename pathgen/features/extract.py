"""Per-slide feature extraction: coords HDF5 + slide -> features HDF5.

Batches stream from reading workers into a `<out>.partial` HDF5 (with a `done` mask), so
memory stays bounded by a few batches and a killed run resumes where it stopped (when the
encoder, preprocessing and coords are unchanged). Finishing drops the done mask and the run
key, closes the file and renames it onto `<out>` (os.replace: atomic, no second copy, so no
2x disk space); if the rename fails the complete partial stays and a rerun only renames it.

The partial file is written through :class:`_GuardedFile` (h5py's file-object driver): an
OS error of a write (ENOSPC, EDQUOT, EIO, EFBIG) is recorded and later writes are dropped, so
HDF5 itself never sees a failure. (A failed HDF5 flush/close leaves the library holding a
file it cannot close; the interpreter then segfaults at exit.) The error is raised as a
:class:`FeatureWriteError` naming the file and errno, and the partial, whose last writes
are incomplete, is removed.
"""

from __future__ import annotations

import contextlib
import errno as errno_names
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

from ..config.features import EncoderSpec, FeaturesConfig
from ..encoders import Encoder, load_encoder
from ..wsi import patch_reader
from ..wsi.loader import PatchBatches, patch_loader
from ..tiling.h5io import read_coords
from .files import features_partial_file
from .h5io import create_datasets, root_attrs, write_features

log = logging.getLogger(__name__)
FLUSH_EVERY = 16  # batches between flushes of the partial file


class FeatureWriteError(OSError):
    """Writing a features file failed at the OS level (disk full, quota, I/O error)."""


class _GuardedFile:
    """Binary file for h5py's ``fileobj`` driver that never lets a write error reach HDF5:
    the first OSError is kept in ``error`` and every later write/truncate is a no-op that
    reports success (see the module docstring). Unbuffered, so errors show at once."""

    def __init__(self, path: Path, mode: str):
        self.path = path
        self._fh = open(path, mode, buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._fh.seek(pos, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def readinto(self, b) -> int:
        return self._fh.readinto(b)

    def write(self, b) -> int:
        mv = memoryview(b).cast("B")
        n, pos = len(mv), self._fh.tell()
        if self.error is None:
            try:
                done = 0
                while done < n:
                    done += self._fh.write(mv[done:])
                return n
            except OSError as err:
                self.error = err
        self._fh.seek(pos + n)
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._fh.truncate(size)
            except OSError as err:
                self.error = err
        return self._fh.tell() if size is None else size

    def flush(self) -> None:
        pass

    def sync(self) -> None:
        if self.error is None:
            try:
                os.fsync(self._fh.fileno())
            except OSError as err:
                self.error = err

    def close(self) -> None:
        self._fh.close()

    def check(self, what: str) -> None:
        if self.error is not None:
            raise _write_error(self.path, self.error, what)


def _write_error(path: Path, err: OSError, what: str) -> FeatureWriteError:
    code = err.errno
    name = errno_names.errorcode.get(code, str(code)) if code is not None else "?"
    fix = {errno_names.ENOSPC: f"free disk space on {path.parent}",
           errno_names.EDQUOT: f"free quota on {path.parent}",
           errno_names.EFBIG: "raise the file-size limit (ulimit -f)"}.get(
               code, f"check the disk of {path.parent}")
    return FeatureWriteError(code, f"{what} {path} failed: {err.strerror or err} (errno {code} "
                                   f"{name}); {fix}, then rerun (this slide restarts; finished "
                                   "slides are untouched)", str(path))


def _run_key(encoder: Encoder, preprocessing: str, dtype: str, coords: np.ndarray) -> str:
    return _key_of(encoder.identifier, preprocessing, dtype, coords)


def _key_of(identifier: str, preprocessing: str, dtype: str, coords: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(identifier.encode())
    h.update(preprocessing.encode())
    h.update(dtype.encode())
    h.update(np.ascontiguousarray(coords, np.int64).tobytes())
    return h.hexdigest()[:32]


def _is_finished(f: h5py.File, key: str, n: int, dim: int) -> bool:
    """A partial whose done mask and run key were already dropped (its rename failed): it is
    complete when it was made with exactly this run's settings (the key recomputed)."""
    if "done" in f or "pathgen_run_key" in f.attrs or "features" not in f or "coords" not in f:
        return False
    a = f.attrs
    try:
        got = _key_of(str(a["encoder_identifier"]), str(a["preprocessing"]), str(a["dtype"]),
                      f["coords"][()])
    except KeyError:
        return False
    return got == key and f["features"].shape == (n, dim)


def _open(path: Path, mode: str) -> tuple[h5py.File, _GuardedFile]:
    fh = _GuardedFile(path, {"r": "rb", "r+": "r+b", "w": "w+b"}[mode])
    try:
        return h5py.File(fh, mode), fh
    except BaseException:
        fh.close()
        raise


def _close(f: h5py.File | None, fh: _GuardedFile) -> None:
    try:
        if f is not None:
            f.close()
    finally:
        fh.close()


def _open_partial(path: Path, key: str, n: int, dim: int, dtype: str, coords, coords_attrs, attrs):
    """Reopen a matching partial file (resume) or start a new one; returns (file, handle, done)
    with file None when the partial is already finished (only its rename is left)."""
    if path.exists():
        f = fh = None
        try:
            f, fh = _open(path, "r")  # inspect read-only: nothing is written to a kept partial
            resume = f.attrs.get("pathgen_run_key") == key and f["done"].shape == (n,)
            finished = not resume and _is_finished(f, key, n, dim)
            _close(f, fh)
            f = fh = None
            if finished:
                log.info("%s is complete; renaming it into place", path)
                return None, None, np.ones(n, bool)
            if resume:
                f, fh = _open(path, "r+")
                done = f["done"][()].astype(bool)
                log.info("resuming %s: %d of %d patches already done", path, int(done.sum()), n)
                return f, fh, done
            log.info("discarding %s (made with other settings)", path)
        except (OSError, KeyError, RuntimeError):
            log.warning("discarding unreadable partial file %s", path)
            if fh is not None:
                with contextlib.suppress(Exception):
                    _close(f, fh)
        path.unlink()
    f = None
    fh = None
    try:
        f, fh = _open(path, "w")
        create_datasets(f, n, dim, dtype, coords, coords_attrs, {**attrs, "pathgen_run_key": key})
        f.create_dataset("done", shape=(n,), dtype=bool)
        f.flush()
        fh.check("creating")
    except OSError as err:
        if fh is not None:
            with contextlib.suppress(Exception):
                _close(f, fh)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if isinstance(err, FeatureWriteError):
            raise
        raise _write_error(path, err, "creating") from None
    return f, fh, np.zeros(n, bool)


def _check_space(path: Path, rows: int, dim: int, dtype: str) -> None:
    need = rows * dim * np.dtype(dtype).itemsize
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < need:
        log.warning("%s needs about %.1f MB more but %s has %.1f MB free; extraction will fail "
                    "with 'No space left on device' unless space is freed", path, need / 2**20,
                    path.parent, free / 2**20)


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="patch", desc=desc, dynamic_ncols=True)


def extract_features(slide: str | os.PathLike, coords_path: str | os.PathLike,
                     out: str | os.PathLike, encoder: Encoder | EncoderSpec | str = "tiny-demo",
                     fcfg: FeaturesConfig | None = None, progress: bool = False) -> dict[str, Any]:
    """Encode every patch of ``coords_path`` on ``slide`` into ``out``; returns a summary.

    ``encoder``: a loaded :class:`Encoder` (a chunk job loads it once), an ``EncoderSpec`` or
    a built-in encoder name (loaded on ``fcfg.device``). ``fcfg``: the reading/batching knobs
    (batch_size, num_workers, device, dtype, reader, tile_cache_mb; its ``encoder`` is unused)."""
    fcfg = fcfg or FeaturesConfig()
    out, dtype = Path(out), fcfg.dtype
    coords, coords_attrs = read_coords(coords_path)
    enc = encoder if isinstance(encoder, Encoder) else load_encoder(encoder, device=fcfg.device)
    size0 = float(coords_attrs["patch_size_level0"])
    n, dim = len(coords), enc.embed_dim
    t0 = time.perf_counter()

    # Patches are read at the encoder's read size: its input size, or the card's resize side
    # before a centre crop (Prov-GigaPath: 256 -> 224), which normalize_uint8 applies.
    read_size = enc.read_size
    crop = {"center_crop": enc.image_size} if read_size != enc.image_size else {}
    if n:
        with patch_reader(slide, fcfg.reader, fcfg.tile_cache_mb) as r:
            read_desc = r.describe(size0, read_size)
    else:  # nothing to read: do not require a readable slide for an empty file
        read_desc = {"reader": "none", "patch_size_level0": size0, "out_size": read_size}
    preprocessing = json.dumps({**read_desc, **crop, "mean": list(enc.mean), "std": list(enc.std)})
    attrs = root_attrs(enc.name, enc.weights, preprocessing, dtype, dim,
                       extra={"encoder_kind": enc.kind, "encoder_identifier": enc.identifier})
    if n == 0:
        write_features(out, np.zeros((0, dim), dtype), coords, coords_attrs, attrs)
        log.info("%s: no patches; wrote empty features file %s", slide, out)
        return {"slide": str(slide), "n_patches": 0, "seconds": 0.0, "out": str(out)}

    partial = features_partial_file(out)
    partial.parent.mkdir(parents=True, exist_ok=True)
    key = _run_key(enc, preprocessing, dtype, coords)
    f, fh, done = _open_partial(partial, key, n, dim, dtype, coords, coords_attrs, attrs)
    todo = np.flatnonzero(~done)
    if f is not None:
        _check_space(partial, len(todo), dim, dtype)
        _encode_into(f, fh, partial, slide, coords, size0, enc, fcfg, todo, progress)
    try:
        os.replace(partial, out)  # same folder: atomic, the finished partial becomes `out`
    except OSError as err:
        raise FeatureWriteError(err.errno, f"renaming the finished {partial} onto {out} failed: "
                                f"{err.strerror}; the partial is complete and kept, a rerun "
                                "only renames it", str(out)) from None
    secs = time.perf_counter() - t0
    log.info("%s: %d patches -> %s in %.1f s (%.1f patches/s, %s)", Path(slide).name, n, out,
             secs, len(todo) / max(secs, 1e-9), read_desc["reader"])
    return {"slide": str(slide), "n_patches": n, "encoded": int(len(todo)), "seconds": secs,
            "out": str(out), "reader": read_desc}


def _encode_into(f, fh, partial, slide, coords, size0, enc, fcfg: FeaturesConfig, todo,
                 progress) -> None:
    """Encode the ``todo`` rows into the open partial, then finish it (done mask and run key
    dropped, fsynced, closed). Write errors: FeatureWriteError, partial removed; any other
    error (a crash, Ctrl-C): the partial is closed and stays resumable."""
    closed = False
    try:
        ds, done_ds = f["features"], f["done"]
        n, dtype = len(coords), fcfg.dtype
        batches = PatchBatches(slide, coords, size0, enc.read_size, fcfg.batch_size, fcfg.reader,
                               fcfg.tile_cache_mb, indices=todo)
        pin = enc.device.type == "cuda"
        with _progress(n, n - len(todo), progress, Path(slide).stem) as bar:
            for i, (idx, patches) in enumerate(patch_loader(batches, fcfg.num_workers, pin)):
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
                fh.check("writing features to")
                if bar is not None:
                    bar.update(len(idx))
        if not done_ds[()].all():
            raise RuntimeError(f"{slide}: {int((~done_ds[()]).sum())} patches were not encoded")
        f.flush()  # complete and still resumable (done mask + run key) up to here
        fh.check("writing features to")
        del ds, done_ds
        del f["done"]
        del f.attrs["pathgen_run_key"]
        f.close()
        fh.sync()
        closed = True
        fh.check("finishing")
    except BaseException:
        if not closed:
            with contextlib.suppress(Exception):
                f.close()
        if fh.error is not None:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()  # its last writes are incomplete: never resume from it
            raise _write_error(partial, fh.error, "writing features to") from None
        raise
    finally:
        fh.close()


def set_torch_threads(n: int | None) -> None:
    """Limit intra-op threads (Snakemake's `threads`), leaving reading workers their cores."""
    if n:
        torch.set_num_threads(max(1, int(n)))
