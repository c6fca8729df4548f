"""Training-format writers: dataset/images/, the open_clip CSV and WebDataset tar shards.

- open_clip CSV (``open_clip_train.main --dataset-type csv``): columns ``filepath``/``title``
  by default, read with pandas ``sep=<csv_separator>``; the separator is recorded in the card
  because open_clip's ``--csv-separator`` defaults to TAB.
- WebDataset (``--dataset-type webdataset``): POSIX tar shards, each sample = files sharing a
  key: ``<key>.jpg`` (or .png) + ``<key>.txt`` (caption) + ``<key>.json`` (metadata). Keys
  contain no dots (WebDataset splits the extension at the first dot). Beside the shards:
  ``sizes.json`` ``{shard basename: samples}``, the file open_clip_train's
  ``data.get_dataset_size`` sums over the shards it is given (so no ``--train-num-samples``),
  and ``count.json`` (pathgen's own record: totals, pattern, fingerprints for reuse).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..atomic import atomic_path, write_json
from .files import DATASET_IMAGES_DIR, SHARDS_COUNT_JSON, SHARDS_SIZES_JSON

SHARD_NAME = "shard-{:06d}.tar"


def clean_caption(text: str) -> str:
    """One line, single spaces: a caption can never break the CSV/separator."""
    return " ".join(str(text).split())


def key_prefix(slide_id: str) -> str:
    """The slide part of a sample key: slide ids that differ only in such characters collide."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", slide_id)


def sample_key(slide_id: str, x: int, y: int) -> str:
    return f"{key_prefix(slide_id)}_{int(x)}_{int(y)}"


def place_image(src: Path, dst: Path, mode: str) -> None:
    """Put `src` at `dst` (hardlink / copy / symlink); skip when already the same file."""
    if dst.exists() or dst.is_symlink():
        try:
            if os.path.samefile(src, dst) or (mode == "copy" and dst.stat().st_size == src.stat().st_size
                                              and dst.stat().st_mtime_ns >= src.stat().st_mtime_ns):
                return
        except FileNotFoundError:
            pass
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        dst.symlink_to(src.resolve())
        return
    if mode == "hardlink":
        try:
            os.link(src, dst)
            return
        except OSError:  # other file system / no link support: copy
            pass
    with atomic_path(dst) as tmp:
        shutil.copy2(src, tmp)


def _prune(folder: Path, keep: set[str] | None = None) -> int:
    """Remove everything in `folder` but the files named in `keep` (None: everything), folders
    emptied on the way included; symlinks are removed, never followed. Returns the files
    (and links) removed."""
    removed = 0
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        p = Path(e.path)
        if e.is_dir(follow_symlinks=False):
            removed += _prune(p)
            if not any(p.iterdir()):
                p.rmdir()
        elif keep is None or e.name not in keep:
            p.unlink()
            removed += 1
    return removed


class ImageSync:
    """dataset/images/, one slide at a time: :meth:`add_slide` places a slide's images
    (<slide>/<file name>) and removes whatever else is in that slide's folder; :meth:`finish`
    removes the folders of slides without samples and stray files. Holds one slide's names."""

    def __init__(self, images_dir: Path, mode: str):
        self.dir, self.mode = images_dir, mode
        self.real_dir = images_dir.resolve()
        self.folders: set[str] = set()  # slide folders written (one name per slide)
        self.removed = 0

    def add_slide(self, samples: list[dict]) -> None:
        wanted: dict[str, set[str]] = {}
        for s in samples:
            dst = self.dir / s["rel_image"]
            folder = dst.parent.name
            if folder not in wanted:
                # rel_image is <safe slide id>/<file name>; a pre-existing symlinked folder in
                # images/ must not carry the write elsewhere either
                if dst.parent.exists() and dst.parent.resolve() != self.real_dir / folder:
                    raise ValueError(f"{dst.parent} is a symlink out of {self.dir}; refused (remove it)")
                wanted[folder] = set()
            place_image(s["src_image"], dst, self.mode)
            wanted[folder].add(dst.name)
        for folder, names in wanted.items():
            self.folders.add(folder)
            self.removed += _prune(self.dir / folder, names)

    def finish(self) -> int:
        """Remove what no sample uses outside the slides' folders; returns the files removed."""
        if self.dir.exists():
            with os.scandir(self.dir) as it:
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                p = Path(e.path)
                if e.is_dir(follow_symlinks=False):
                    if e.name not in self.folders:
                        self.removed += _prune(p)
                        p.rmdir()
                else:
                    p.unlink()
                    self.removed += 1
        return self.removed


@contextlib.contextmanager
def csv_writer(path: Path, dataset_dir: Path, sep: str, img_key: str, cap_key: str,
               paths: str) -> Iterator[Callable[[dict], None]]:
    """The open_clip CSV, one sample at a time: yields ``add(sample)``; atomic (the file
    appears when the block ends without an error)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=sep, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow([img_key, cap_key])

        def add(s: dict) -> None:
            p = dataset_dir / DATASET_IMAGES_DIR / s["rel_image"]
            shown = str(p.absolute()) if paths == "absolute" else f"{DATASET_IMAGES_DIR}/{s['rel_image']}"
            w.writerow([shown, clean_caption(s["caption"])])

        yield add


def tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """One tar member, fixed mode and mtime (shards are byte-reproducible)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible shards
    tar.addfile(info, io.BytesIO(data))


def _shard_fingerprint(chunk: list[dict]) -> str:
    h = hashlib.sha256()
    for s in chunk:
        st = s["src_image"].stat()
        h.update(json.dumps([s["key"], s["caption"], s["meta"], str(s["src_image"]), st.st_size,
                             st.st_mtime_ns], sort_keys=True).encode())
    return h.hexdigest()[:16]


class ShardWriter:
    """WebDataset shards, one sample at a time: a shard's samples are held until it is full
    (shard_size), then written unless the shard on disk has the same fingerprint (reused).
    :meth:`close` writes the last shard, removes shards beyond the last and writes
    shards/count.json and shards/sizes.json."""

    def __init__(self, shards_dir: Path, shard_size: int):
        self.dir, self.shard_size = shards_dir, shard_size
        shards_dir.mkdir(parents=True, exist_ok=True)
        self.count_file = shards_dir / SHARDS_COUNT_JSON
        self.old = {}
        if self.count_file.exists():
            try:
                self.old = {s["name"]: s.get("fingerprint")
                            for s in json.loads(self.count_file.read_text())["shards"]}
            except (json.JSONDecodeError, KeyError, TypeError):
                self.old = {}
        self.entries: list[dict] = []
        self.chunk: list[dict] = []
        self.reused = self.num_samples = 0

    def add(self, s: dict) -> None:
        self.chunk.append(s)
        if len(self.chunk) == self.shard_size:
            self._flush()

    def _flush(self) -> None:
        chunk, self.chunk = self.chunk, []
        name = SHARD_NAME.format(len(self.entries))
        fp = _shard_fingerprint(chunk)
        if self.old.get(name) == fp and (self.dir / name).exists():
            self.reused += 1
        else:
            with atomic_path(self.dir / name) as tmp:
                with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                    for s in chunk:
                        ext = s["src_image"].suffix.lower().lstrip(".")
                        ext = "jpg" if ext in ("jpg", "jpeg") else ext
                        tar_add(tar, f"{s['key']}.{ext}", s["src_image"].read_bytes())
                        tar_add(tar, f"{s['key']}.txt", clean_caption(s["caption"]).encode())
                        tar_add(tar, f"{s['key']}.json",
                                 json.dumps(s["meta"], ensure_ascii=False).encode())
        self.entries.append({"name": name, "num_samples": len(chunk), "fingerprint": fp})
        self.num_samples += len(chunk)

    def close(self) -> dict:
        if self.chunk:
            self._flush()
        entries = self.entries
        names = {e["name"] for e in entries}
        for p in self.dir.glob("shard-*.tar"):
            if p.name not in names:
                p.unlink()
        n = len(entries)
        info = {"num_samples": self.num_samples, "num_shards": n, "shard_size": self.shard_size,
                "pattern": (f"shard-{{{0:06d}..{n - 1:06d}}}.tar" if n else ""),
                "shards": entries}
        write_json(self.count_file, info)
        # open_clip's contract: a dict keyed by each shard's basename (not the pattern), counts as ints
        write_json(self.dir / SHARDS_SIZES_JSON, {e["name"]: e["num_samples"] for e in entries})
        info["reused_shards"] = self.reused
        return info


def write_shards(shards_dir: Path, samples: Iterable[dict], shard_size: int) -> dict:
    """Write shards (reusing unchanged ones, found by fingerprint), shards/count.json and
    shards/sizes.json."""
    w = ShardWriter(shards_dir, shard_size)
    for s in samples:
        w.add(s)
    return w.close()
