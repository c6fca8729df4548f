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

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

from ..atomic import atomic_path, write_json
from .files import DATASET_IMAGES_DIR, SHARDS_COUNT_JSON, SHARDS_SIZES_JSON

SHARD_NAME = "shard-{:06d}.tar"


def clean_caption(text: str) -> str:
    """One line, single spaces: a caption can never break the CSV/separator."""
    return " ".join(str(text).split())


def sample_key(slide_id: str, x: int, y: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', slide_id)}_{int(x)}_{int(y)}"


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


def sync_images(samples: list[dict], images_dir: Path, mode: str) -> int:
    """Place every sample's image under images_dir/<rel>; remove files no sample uses."""
    wanted = set()
    real_dir = images_dir.resolve()
    for s in samples:
        dst = images_dir / s["rel_image"]
        # rel_image is <safe slide id>/<file name>; a pre-existing symlinked folder in
        # images/ must not carry the write elsewhere either
        if dst.parent.exists() and dst.parent.resolve() != real_dir / dst.parent.name:
            raise ValueError(f"{dst.parent} is a symlink out of {images_dir}; refused (remove it)")
        place_image(s["src_image"], dst, mode)
        wanted.add(dst.absolute())
    removed = 0
    if images_dir.exists():
        for p in sorted(images_dir.rglob("*"), reverse=True):  # children before their folder
            if p.is_dir() and not p.is_symlink():
                if not any(p.iterdir()):
                    p.rmdir()
            elif p.absolute() not in wanted:
                p.unlink()
                removed += 1
    return removed


def write_csv(path: Path, samples: list[dict], dataset_dir: Path, sep: str, img_key: str,
              cap_key: str, paths: str) -> int:
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=sep, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow([img_key, cap_key])
            for s in samples:
                p = dataset_dir / DATASET_IMAGES_DIR / s["rel_image"]
                shown = str(p.absolute()) if paths == "absolute" else f"{DATASET_IMAGES_DIR}/{s['rel_image']}"
                w.writerow([shown, clean_caption(s["caption"])])
    return len(samples)


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


def write_shards(shards_dir: Path, samples: list[dict], shard_size: int) -> dict:
    """Write shards (reusing unchanged ones, found by fingerprint), shards/count.json and
    shards/sizes.json."""
    shards_dir.mkdir(parents=True, exist_ok=True)
    count_file = shards_dir / SHARDS_COUNT_JSON
    old = {}
    if count_file.exists():
        try:
            old = {s["name"]: s.get("fingerprint") for s in json.loads(count_file.read_text())["shards"]}
        except (json.JSONDecodeError, KeyError, TypeError):
            old = {}
    entries, reused = [], 0
    for idx, start in enumerate(range(0, len(samples), shard_size)):
        chunk = samples[start:start + shard_size]
        name = SHARD_NAME.format(idx)
        fp = _shard_fingerprint(chunk)
        if old.get(name) == fp and (shards_dir / name).exists():
            reused += 1
        else:
            with atomic_path(shards_dir / name) as tmp:
                with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                    for s in chunk:
                        ext = s["src_image"].suffix.lower().lstrip(".")
                        ext = "jpg" if ext in ("jpg", "jpeg") else ext
                        tar_add(tar, f"{s['key']}.{ext}", s["src_image"].read_bytes())
                        tar_add(tar, f"{s['key']}.txt", clean_caption(s["caption"]).encode())
                        tar_add(tar, f"{s['key']}.json",
                                 json.dumps(s["meta"], ensure_ascii=False).encode())
        entries.append({"name": name, "num_samples": len(chunk), "fingerprint": fp})
    names = {e["name"] for e in entries}
    for p in shards_dir.glob("shard-*.tar"):
        if p.name not in names:
            p.unlink()
    n = len(entries)
    info = {"num_samples": len(samples), "num_shards": n, "shard_size": shard_size,
            "pattern": (f"shard-{{{0:06d}..{n - 1:06d}}}.tar" if n else ""),
            "shards": entries}
    write_json(count_file, info)
    # open_clip's contract: a dict keyed by each shard's basename (not the pattern), counts as ints
    write_json(shards_dir / SHARDS_SIZES_JSON, {e["name"]: e["num_samples"] for e in entries})
    info["reused_shards"] = reused
    return info
